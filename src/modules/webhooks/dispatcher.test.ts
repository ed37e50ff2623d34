import { describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { startReceiver, type TestCertificate, testCertificate } from "../../testing/receiver";
import { deliveryOf, useWebhookWorld } from "../../testing/webhooks";
import { Dispatcher } from "./dispatcher";

const t = useWebhookWorld();
const { drain, advance } = t;
const freshEndpoint = t.freshEndpoint;

describe("delivery", () => {
  test("POSTs the Standard Webhooks envelope, verified by the official library", async () => {
    const { secret } = await freshEndpoint();
    const sent = await t.world.notify("alert.fired", { host: "db-1" });
    expect(sent.deliveries).toBe(1);
    await drain();
    expect(t.receiver.received).toHaveLength(1);
    const got = t.receiver.received[0];
    if (!got) throw new Error("nothing received");
    expect(got.id).toBe(`msg_${sent.id}`);
    const payload = new Webhook(secret).verify(got.body, got.headers) as {
      type: string;
      data: { id: string; data: unknown };
    };
    expect(payload.type).toBe("alert.fired");
    expect(payload.data.id).toBe(sent.id);
    expect(payload.data.data).toEqual({ host: "db-1" });
    expect(got.headers["content-type"]).toBe("application/json");
    const { delivery, attempts } = await t.world.delivery(deliveryOf(t.world, sent.id));
    expect(delivery.status).toBe("delivered");
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ status_code: 204, outcome: "delivered", error: null });
  });

  test("event-type filters: exact types and prefixes", async () => {
    await freshEndpoint({ event_types: ["deploy.done", "alert.*"] });
    expect((await t.world.notify("alert.resolved")).deliveries).toBe(1);
    expect((await t.world.notify("deploy.done")).deliveries).toBe(1);
    expect((await t.world.notify("deploy.started")).deliveries).toBe(0);
    await drain();
    expect(t.receiver.received.map((r) => (JSON.parse(r.body) as { type: string }).type).sort()).toEqual([
      "alert.resolved",
      "deploy.done",
    ]);
  });
});

describe("retries", () => {
  test("a receiver that fails twice gets the delivery on the third attempt, each attempt recorded", async () => {
    await freshEndpoint();
    t.receiver.respond = (n) => new Response("boom", { status: n <= 2 ? 500 : 200 });
    const sent = await t.world.notify();
    const id = deliveryOf(t.world, sent.id);
    await drain();
    expect((await t.world.delivery(id)).delivery).toMatchObject({
      status: "failed",
      attempts: 1,
      last_status_code: 500,
    });
    await advance(500);
    await drain();
    expect(t.receiver.received).toHaveLength(1); // 1 s ± 20 % has not passed yet
    await advance(1000);
    await drain();
    await advance(1300);
    await drain();
    const { delivery, attempts } = await t.world.delivery(id);
    expect(delivery.status).toBe("delivered");
    expect(attempts.map((a) => a.status_code)).toEqual([500, 500, 200]);
    expect(attempts.map((a) => a.outcome)).toEqual(["retry", "retry", "delivered"]);
    expect(new Set(t.receiver.received.map((r) => r.id)).size).toBe(1);
  });

  test("a delivery waiting for a retry goes to the endpoint's new URL, signed with the same secret", async () => {
    const { id: endpointId, secret } = await freshEndpoint();
    t.receiver.respond = () => new Response("down", { status: 500 });
    const moved = startReceiver();
    try {
      const sent = await t.world.notify();
      const id = deliveryOf(t.world, sent.id);
      await drain();
      expect((await t.world.delivery(id)).delivery).toMatchObject({ status: "failed", attempts: 1 });
      const res = await t.world.ctx.req("PATCH", `/v1/webhooks/endpoints/${endpointId}`, {
        body: { url: moved.url },
        headers: t.world.admin.auth,
      });
      expect(res.status).toBe(200);
      await advance(1300);
      await drain();
      expect((await t.world.delivery(id)).delivery.status).toBe("delivered");
      expect(t.receiver.received).toHaveLength(1);
      const got = moved.received[0];
      if (!got) throw new Error("nothing received at the new URL");
      expect(got.id).toBe(`msg_${sent.id}`);
      // Earlier tests moved the service's clock past the t.receiver's: compare signatures, not timestamps.
      const signed = new Webhook(secret).sign(got.id, new Date(Number(got.timestamp) * 1000), got.body);
      expect(got.signature).toBe(signed);
    } finally {
      await moved.close();
    }
  });

  test("after the last step of the schedule the delivery is dead", async () => {
    await freshEndpoint();
    t.receiver.respond = () => new Response(null, { status: 500 });
    const sent = await t.world.notify();
    for (let i = 0; i < 6; i++) {
      await drain();
      await advance(1300);
    }
    const { delivery, attempts } = await t.world.delivery(deliveryOf(t.world, sent.id));
    expect(delivery.status).toBe("dead");
    expect(attempts).toHaveLength(4);
    expect(attempts.at(-1)?.outcome).toBe("dead");
    const metrics = await t.world.ctx.deps.metrics.registry.getSingleMetricAsString("webhook_deliveries_dead_total");
    expect(metrics).toMatch(/webhook_deliveries_dead_total [1-9]/);
  });

  test("429 and 503 with Retry-After wait as long as the receiver asks", async () => {
    await freshEndpoint();
    t.receiver.respond = (n) =>
      n === 1
        ? new Response(null, { status: 429, headers: { "retry-after": "30" } })
        : new Response(null, { status: 200 });
    const sent = await t.world.notify();
    const id = deliveryOf(t.world, sent.id);
    await drain();
    const waiting = (await t.world.delivery(id)).delivery;
    expect(waiting.status).toBe("failed");
    expect(Date.parse(String(waiting.next_attempt_at)) - t.world.ctx.clock.now()).toBe(30_000);
    await advance(5000);
    await drain();
    expect(t.receiver.received).toHaveLength(1);
    await advance(25_000);
    await drain();
    expect((await t.world.delivery(id)).delivery.status).toBe("delivered");
  });

  test("a receiver that hangs past the timeout counts as a failed attempt", async () => {
    await freshEndpoint();
    t.receiver.respond = async (n) => {
      if (n === 1) await Bun.sleep(1500);
      return new Response(null, { status: 204 });
    };
    const sent = await t.world.notify();
    const id = deliveryOf(t.world, sent.id);
    const started = Date.now();
    await drain();
    expect(Date.now() - started).toBeLessThan(1400);
    const { delivery, attempts } = await t.world.delivery(id);
    expect(delivery.status).toBe("failed");
    expect(attempts[0]).toMatchObject({ status_code: null, outcome: "retry", error: "no answer within 400 ms" });
    await advance(1300);
    await drain();
    expect((await t.world.delivery(id)).delivery.status).toBe("delivered");
  });

  test("410 Gone disables the endpoint; its deliveries wait for an enable", async () => {
    const { id: endpointId } = await freshEndpoint();
    t.receiver.respond = (n) => new Response(null, { status: n === 1 ? 410 : 204 });
    const sent = await t.world.notify();
    await drain();
    const endpoint = await t.world.ctx.req("GET", `/v1/webhooks/endpoints/${endpointId}`, {
      headers: t.world.admin.auth,
    });
    const body = (await endpoint.json()) as { disabled_at: string | null; disabled_reason: string };
    expect(body.disabled_at).not.toBeNull();
    expect(body.disabled_reason).toContain("410");
    const audit = t.world.ctx.auditEvents("webhook.disable").at(-1);
    expect(audit?.actor_type).toBe("system");
    expect((await t.world.notify()).deliveries).toBe(0);
    await advance(60_000);
    await drain();
    expect(t.receiver.received).toHaveLength(1);

    const enabled = await t.world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/enable`, {
      headers: t.world.admin.auth,
    });
    expect(enabled.status).toBe(200);
    await drain();
    expect(t.receiver.received).toHaveLength(2);
    expect((await t.world.delivery(deliveryOf(t.world, sent.id))).delivery.status).toBe("delivered");
  });
});

describe("name resolution", () => {
  /** A dispatcher whose resolver knows only `names`, trusting the test certificates. */
  const resolvingDispatcher = (names: Record<string, string | string[]>, asked: string[] = []) => {
    const { deps } = t.world.ctx;
    return new Dispatcher(deps.db.$client, {
      clock: t.world.ctx.clock,
      batcher: deps.security.batcher,
      endpoints: deps.webhooks.endpoints,
      config: deps.config.webhook,
      metrics: deps.metrics,
      log: deps.log,
      userAgent: "resolution-test",
      resolve: async (host) => {
        asked.push(host);
        return [names[host] ?? []].flat();
      },
      ca: [testCertificate("receiver").cert, testCertificate("elsewhere").cert],
    });
  };

  test("a plain-HTTP delivery goes to the address its name was resolved and checked to, with the name as Host", async () => {
    const port = new URL(t.receiver.url).port;
    // A name only this resolver knows: fetch resolving it again by itself would fail.
    await freshEndpoint({}, `http://t.receiver.invalid:${port}/hooks`);
    const asked: string[] = [];
    const dispatcher = resolvingDispatcher({ "t.receiver.invalid": "127.0.0.1" }, asked);
    await t.world.notify("alert.fired");
    await dispatcher.drain();
    expect(asked).toEqual(["t.receiver.invalid"]);
    expect(t.receiver.received).toHaveLength(1);
    expect(t.receiver.received[0]?.headers.host).toBe(`t.receiver.invalid:${port}`);
  });

  /**
   * One notification to `https://receiver.warden.invalid:<port>/hooks`, that name resolving to
   * `addresses` alone, sent to a TLS receiver on 127.0.0.1 presenting `certificate`.
   */
  const overTls = async (certificate: TestCertificate, addresses: string | string[], asked: string[] = []) => {
    const tls = startReceiver("/hooks", certificate);
    try {
      const port = new URL(tls.url).port;
      const { secret } = await freshEndpoint({}, `https://receiver.warden.invalid:${port}/hooks`);
      const sent = await t.world.notify("alert.fired");
      await resolvingDispatcher({ "receiver.warden.invalid": addresses }, asked).drain();
      return { port, secret, received: [...tls.received], ...(await t.world.delivery(deliveryOf(t.world, sent.id))) };
    } finally {
      await tls.close();
    }
  };

  test("an HTTPS delivery goes to the address checked too, its certificate verified against the name", async () => {
    const asked: string[] = [];
    const { port, secret, received, delivery } = await overTls("receiver", "127.0.0.1", asked);
    expect(asked).toEqual(["receiver.warden.invalid"]);
    expect(received).toHaveLength(1);
    const got = received[0];
    expect(got?.headers.host).toBe(`receiver.warden.invalid:${port}`);
    expect(new Webhook(secret).verify(got?.body ?? "", got?.headers ?? {})).toMatchObject({ type: "alert.fired" });
    expect(delivery.status).toBe("delivered");
  });

  test("a name's addresses are tried in turn: one that refuses the connection is passed over", async () => {
    // Nothing listens on 127.0.0.2: the receiver is bound to 127.0.0.1 alone.
    const { received, delivery, attempts } = await overTls("receiver", ["127.0.0.2", "127.0.0.1"]);
    expect(received).toHaveLength(1);
    expect(delivery.status).toBe("delivered");
    expect(attempts).toHaveLength(1);
  });

  test("an HTTPS address whose certificate names another host gets nothing, and the attempt fails", async () => {
    // What a name rebound to another TLS server looks like, though that server's certificate is trusted.
    const { received, delivery, attempts } = await overTls("elsewhere", "127.0.0.1");
    expect(received).toHaveLength(0);
    expect(delivery.status).toBe("failed");
    expect(attempts[0]).toMatchObject({ status_code: null, outcome: "retry" });
    expect(String(attempts[0]?.error)).toContain("CERT");
  });
});
