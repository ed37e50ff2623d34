import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { type Receiver, startReceiver } from "../../testing/receiver";
import {
  deliveryOf,
  freshEndpoint as freshEndpointFor,
  type WebhookWorld,
  webhookWorldWithReceiver,
} from "../../testing/webhooks";
import { Dispatcher } from "./dispatcher";

let world: WebhookWorld;
let receiver: Receiver;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ world, receiver, close } = await webhookWorldWithReceiver());
});
afterAll(() => close());

const drain = () => world.ctx.deps.webhooks.dispatcher.drain();
const advance = (ms: number) => world.advance(ms);

const freshEndpoint = (extra: Record<string, unknown> = {}, url = receiver.url) =>
  freshEndpointFor(world, receiver, extra, url);

afterEach(() => {
  receiver.respond = () => new Response(null, { status: 204 });
});

describe("delivery", () => {
  test("POSTs the Standard Webhooks envelope, verified by the official library", async () => {
    const { secret } = await freshEndpoint();
    const sent = await world.notify("alert.fired", { host: "db-1" });
    expect(sent.deliveries).toBe(1);
    await drain();
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0];
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
    const { delivery, attempts } = await world.delivery(deliveryOf(world, sent.id));
    expect(delivery.status).toBe("delivered");
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ status_code: 204, outcome: "delivered", error: null });
  });

  test("event-type filters: exact types and prefixes", async () => {
    await freshEndpoint({ event_types: ["deploy.done", "alert.*"] });
    expect((await world.notify("alert.resolved")).deliveries).toBe(1);
    expect((await world.notify("deploy.done")).deliveries).toBe(1);
    expect((await world.notify("deploy.started")).deliveries).toBe(0);
    await drain();
    expect(receiver.received.map((r) => (JSON.parse(r.body) as { type: string }).type).sort()).toEqual([
      "alert.resolved",
      "deploy.done",
    ]);
  });
});

describe("retries", () => {
  test("a receiver that fails twice gets the delivery on the third attempt, each attempt recorded", async () => {
    await freshEndpoint();
    receiver.respond = (n) => new Response("boom", { status: n <= 2 ? 500 : 200 });
    const sent = await world.notify();
    const id = deliveryOf(world, sent.id);
    await drain();
    expect((await world.delivery(id)).delivery).toMatchObject({ status: "failed", attempts: 1, last_status_code: 500 });
    await advance(500);
    await drain();
    expect(receiver.received).toHaveLength(1); // 1 s ± 20 % has not passed yet
    await advance(1000);
    await drain();
    await advance(1300);
    await drain();
    const { delivery, attempts } = await world.delivery(id);
    expect(delivery.status).toBe("delivered");
    expect(attempts.map((a) => a.status_code)).toEqual([500, 500, 200]);
    expect(attempts.map((a) => a.outcome)).toEqual(["retry", "retry", "delivered"]);
    expect(new Set(receiver.received.map((r) => r.id)).size).toBe(1);
  });

  test("a delivery waiting for a retry goes to the endpoint's new URL, signed with the same secret", async () => {
    const { id: endpointId, secret } = await freshEndpoint();
    receiver.respond = () => new Response("down", { status: 500 });
    const moved = startReceiver();
    try {
      const sent = await world.notify();
      const id = deliveryOf(world, sent.id);
      await drain();
      expect((await world.delivery(id)).delivery).toMatchObject({ status: "failed", attempts: 1 });
      const res = await world.ctx.req("PATCH", `/v1/webhooks/endpoints/${endpointId}`, {
        body: { url: moved.url },
        headers: world.admin.auth,
      });
      expect(res.status).toBe(200);
      await advance(1300);
      await drain();
      expect((await world.delivery(id)).delivery.status).toBe("delivered");
      expect(receiver.received).toHaveLength(1);
      const got = moved.received[0];
      if (!got) throw new Error("nothing received at the new URL");
      expect(got.id).toBe(`msg_${sent.id}`);
      // Earlier tests moved the service's clock past the receiver's: compare signatures, not timestamps.
      const signed = new Webhook(secret).sign(got.id, new Date(Number(got.timestamp) * 1000), got.body);
      expect(got.signature).toBe(signed);
    } finally {
      await moved.close();
    }
  });

  test("after the last step of the schedule the delivery is dead", async () => {
    await freshEndpoint();
    receiver.respond = () => new Response(null, { status: 500 });
    const sent = await world.notify();
    for (let i = 0; i < 6; i++) {
      await drain();
      await advance(1300);
    }
    const { delivery, attempts } = await world.delivery(deliveryOf(world, sent.id));
    expect(delivery.status).toBe("dead");
    expect(attempts).toHaveLength(4);
    expect(attempts.at(-1)?.outcome).toBe("dead");
    const metrics = await world.ctx.deps.metrics.registry.getSingleMetricAsString("webhook_deliveries_dead_total");
    expect(metrics).toMatch(/webhook_deliveries_dead_total [1-9]/);
  });

  test("429 and 503 with Retry-After wait as long as the receiver asks", async () => {
    await freshEndpoint();
    receiver.respond = (n) =>
      n === 1
        ? new Response(null, { status: 429, headers: { "retry-after": "30" } })
        : new Response(null, { status: 200 });
    const sent = await world.notify();
    const id = deliveryOf(world, sent.id);
    await drain();
    const waiting = (await world.delivery(id)).delivery;
    expect(waiting.status).toBe("failed");
    expect(Date.parse(String(waiting.next_attempt_at)) - world.ctx.clock.now()).toBe(30_000);
    await advance(5000);
    await drain();
    expect(receiver.received).toHaveLength(1);
    await advance(25_000);
    await drain();
    expect((await world.delivery(id)).delivery.status).toBe("delivered");
  });

  test("a receiver that hangs past the timeout counts as a failed attempt", async () => {
    await freshEndpoint();
    receiver.respond = async (n) => {
      if (n === 1) await Bun.sleep(1500);
      return new Response(null, { status: 204 });
    };
    const sent = await world.notify();
    const id = deliveryOf(world, sent.id);
    const started = Date.now();
    await drain();
    expect(Date.now() - started).toBeLessThan(1400);
    const { delivery, attempts } = await world.delivery(id);
    expect(delivery.status).toBe("failed");
    expect(attempts[0]).toMatchObject({ status_code: null, outcome: "retry", error: "no answer within 400 ms" });
    await advance(1300);
    await drain();
    expect((await world.delivery(id)).delivery.status).toBe("delivered");
  });

  test("410 Gone disables the endpoint; its deliveries wait for an enable", async () => {
    const { id: endpointId } = await freshEndpoint();
    receiver.respond = (n) => new Response(null, { status: n === 1 ? 410 : 204 });
    const sent = await world.notify();
    await drain();
    const endpoint = await world.ctx.req("GET", `/v1/webhooks/endpoints/${endpointId}`, { headers: world.admin.auth });
    const body = (await endpoint.json()) as { disabled_at: string | null; disabled_reason: string };
    expect(body.disabled_at).not.toBeNull();
    expect(body.disabled_reason).toContain("410");
    const audit = world.ctx.auditEvents("webhook.disable").at(-1);
    expect(audit?.actor_type).toBe("system");
    expect((await world.notify()).deliveries).toBe(0);
    await advance(60_000);
    await drain();
    expect(receiver.received).toHaveLength(1);

    const enabled = await world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/enable`, {
      headers: world.admin.auth,
    });
    expect(enabled.status).toBe(200);
    await drain();
    expect(receiver.received).toHaveLength(2);
    expect((await world.delivery(deliveryOf(world, sent.id))).delivery.status).toBe("delivered");
  });
});

describe("name resolution", () => {
  test("a plain-HTTP delivery goes to the address its name was resolved and checked to, with the name as Host", async () => {
    const port = new URL(receiver.url).port;
    // A name only this resolver knows: fetch resolving it again by itself would fail.
    await freshEndpoint({}, `http://receiver.invalid:${port}/hooks`);
    const asked: string[] = [];
    const { deps } = world.ctx;
    const dispatcher = new Dispatcher(deps.db.$client, {
      clock: world.ctx.clock,
      batcher: deps.security.batcher,
      endpoints: deps.webhooks.endpoints,
      config: deps.config.webhook,
      metrics: deps.metrics,
      log: deps.log,
      userAgent: "resolution-test",
      resolve: async (host) => {
        asked.push(host);
        return host === "receiver.invalid" ? ["127.0.0.1"] : [];
      },
    });
    await world.notify("alert.fired");
    await dispatcher.drain();
    expect(asked).toEqual(["receiver.invalid"]);
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]?.headers.host).toBe(`receiver.invalid:${port}`);
  });
});
