import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { ulidFloor } from "../../lib/secrets";
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
const latencyCount = async () =>
  (await world.ctx.deps.metrics.webhookLatency.get()).values.find(
    (v) => v.metricName === "webhook_delivery_latency_seconds_count",
  )?.value ?? 0;
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

describe("operations", () => {
  test("retry a dead delivery: 202, audited, delivered; retrying a delivered one is 409", async () => {
    await freshEndpoint();
    receiver.respond = () => new Response(null, { status: 500 });
    const sent = await world.notify();
    const id = deliveryOf(world, sent.id);
    for (let i = 0; i < 5; i++) {
      await drain();
      await advance(1300);
    }
    expect((await world.delivery(id)).delivery.status).toBe("dead");
    receiver.respond = () => new Response(null, { status: 204 });
    const viewerTry = await world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, {
      headers: world.viewer.auth,
    });
    expect(viewerTry.status).toBe(403);
    const outsiderTry = await world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, {
      headers: world.outsider.auth,
    });
    expect(outsiderTry.status).toBe(404);
    const res = await world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, { headers: world.admin.auth });
    expect(res.status).toBe(202);
    expect(world.ctx.auditEvents("delivery.retry").at(-1)?.target_id).toBe(id);
    await drain();
    expect((await world.delivery(id)).delivery.status).toBe("delivered");
    const again = await world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, { headers: world.admin.auth });
    expect(again.status).toBe(409);
  });

  test("replay sends an endpoint's deliveries since a time again: same id, same bytes", async () => {
    const { id: endpointId } = await freshEndpoint();
    const latencyBefore = await latencyCount();
    const since = new Date(world.ctx.clock.now()).toISOString();
    await world.notify();
    await world.notify();
    await drain();
    const first = receiver.received.map((r) => [r.id, r.body]);
    const res = await world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, {
      body: { since },
      headers: world.admin.auth,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ replayed: 2, complete: true });
    await drain();
    const replayed = receiver.received.slice(2).map((r) => [r.id, r.body]);
    expect(replayed.sort()).toEqual(first.sort());
    // Replays are not delivery delays: only the two first deliveries are in the latency histogram.
    expect((await latencyCount()) - latencyBefore).toBe(2);
    for (const since of ["2026-02-30T00:00:00Z", "2026-12-01"]) {
      const refused = await world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, {
        body: { since },
        headers: world.admin.auth,
      });
      expect(refused.status).toBe(422);
      expect((await refused.json()).errors[0]).toMatchObject({ in: "body", field: "since" });
    }
    const bad = await world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, {
      body: { since: "yesterday" },
      headers: world.admin.auth,
    });
    expect(bad.status).toBe(422);
  });

  test("list by status, stats and the queue-depth gauge agree", async () => {
    await freshEndpoint();
    receiver.respond = () => new Response(null, { status: 500 });
    await world.notify();
    await drain();
    const failed = await world.ctx.req("GET", "/v1/webhooks/deliveries?status=failed", { headers: world.dev.auth });
    const list = (await failed.json()) as { deliveries: { status: string }[] };
    expect(list.deliveries.length).toBeGreaterThanOrEqual(1);
    expect(list.deliveries.every((d) => d.status === "failed")).toBe(true);
    const stats = (await (await world.ctx.req("GET", "/v1/webhooks/stats", { headers: world.dev.auth })).json()) as {
      queue: Record<string, number>;
      success_rate_24h: number;
    };
    expect(stats.queue.failed).toBe(list.deliveries.length);
    expect(stats.success_rate_24h).toBeGreaterThan(0);
    expect(stats.success_rate_24h).toBeLessThan(1);
    const gauge = await world.ctx.deps.metrics.registry.getSingleMetricAsString("webhook_queue_depth");
    expect(gauge).toContain(`webhook_queue_depth{status="failed"} ${stats.queue.failed}`);
    const bad = await world.ctx.req("GET", "/v1/webhooks/deliveries?status=lost", { headers: world.dev.auth });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { errors: { in: string; field: string; message: string }[] }).errors[0]).toEqual({
      in: "query",
      field: "status",
      message: "Expected one of pending, leased, failed, delivered, dead",
    });
    // No status filter means every status, not the first one.
    const all = await world.ctx.req("GET", "/v1/webhooks/deliveries?limit=200", { headers: world.dev.auth });
    const statuses = new Set(
      ((await all.json()) as { deliveries: { status: string }[] }).deliveries.map((d) => d.status),
    );
    expect([...statuses].sort()).toEqual(expect.arrayContaining(["dead", "delivered", "failed"]));
    // Unfiltered pages merge every status newest first, each delivery once.
    const everything = world.ctx.deps.db.$client
      .query<{ id: string }, [string]>("SELECT id FROM webhook_deliveries WHERE tenant_id = ? ORDER BY id DESC")
      .all("acme")
      .map((row) => row.id);
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await world.ctx.req("GET", `/v1/webhooks/deliveries?limit=3${cursor ? `&cursor=${cursor}` : ""}`, {
        headers: world.dev.auth,
      });
      const body = (await page.json()) as { deliveries: { id: string }[]; next_cursor: string | null };
      paged.push(...body.deliveries.map((d) => d.id));
      cursor = body.next_cursor;
    } while (cursor);
    expect(paged).toEqual(everything);
    // A cursor the list never returned is a 422 naming it, not the first page or an empty one.
    for (const garbage of ["x", "0", "%25%25"]) {
      const bad = await world.ctx.req("GET", `/v1/webhooks/deliveries?cursor=${garbage}`, { headers: world.dev.auth });
      expect(bad.status).toBe(422);
      expect((await bad.json()).errors[0]).toMatchObject({ in: "query", field: "cursor" });
    }
    const endpointId = world.ctx.deps.webhooks.endpoints.list("acme", { limit: 1000 })[0]?.id ?? "";
    const ofEndpoint = await world.ctx.req("GET", `/v1/webhooks/deliveries?endpoint_id=${endpointId}&limit=200`, {
      headers: world.dev.auth,
    });
    const mine = ((await ofEndpoint.json()) as { deliveries: { endpoint_id: string }[] }).deliveries;
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((d) => d.endpoint_id === endpointId)).toBe(true);
    const zero = await world.ctx.req("GET", "/v1/webhooks/deliveries?limit=0", { headers: world.dev.auth });
    expect(((await zero.json()) as { errors: { in: string; field: string }[] }).errors[0]).toMatchObject({
      in: "query",
      field: "limit",
    });
    const outsider = (await (
      await world.ctx.req("GET", "/v1/webhooks/deliveries", { headers: world.outsider.auth })
    ).json()) as { deliveries: unknown[] };
    expect(outsider.deliveries).toHaveLength(0);
  });

  test("deleting an endpoint marks what waited for it dead", async () => {
    const { id: endpointId } = await freshEndpoint();
    receiver.respond = () => new Response(null, { status: 500 });
    const sent = await world.notify();
    await drain();
    const res = await world.ctx.req("DELETE", `/v1/webhooks/endpoints/${endpointId}`, { headers: world.admin.auth });
    expect(res.status).toBe(204);
    const id = deliveryOf(world, sent.id);
    expect((await world.delivery(id)).delivery).toMatchObject({ status: "dead", last_error: "endpoint deleted" });
    const retry = await world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, { headers: world.admin.auth });
    expect(retry.status).toBe(409);
    expect(((await retry.json()) as { detail: string }).detail).toContain("deleted");
    expect(world.ctx.auditEvents("webhook.delete").at(-1)?.target_id).toBe(endpointId);
  });
  test("stats count the finished deliveries of the last 24 hours, and every waiting one", async () => {
    const stats = async () =>
      (
        (await (await world.ctx.req("GET", "/v1/webhooks/stats", { headers: world.dev.auth })).json()) as {
          queue: Record<string, number>;
        }
      ).queue;
    const { id: endpointId } = await freshEndpoint();
    receiver.respond = () => new Response(null, { status: 204 });
    const before = await stats();
    // Delivered two days ago (ids are ULIDs, which carry their creation time): kept for the
    // retention's 90 days, but no longer counted, so a dashboard poll stays short.
    const old = `${ulidFloor(world.ctx.clock.now() - 48 * 3600 * 1000).slice(0, 10)}${"Z".repeat(16)}`;
    world.ctx.deps.db.$client
      .query(
        `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status,
           attempts, due_at, created_at, delivered_at)
         VALUES (?, ?, ?, 'n-old', 'alert.fired', '{}', 'delivered', 1, 0, 0, 0)`,
      )
      .run(old, world.dev.tenant, endpointId);
    await world.notify();
    await drain();
    const after = await stats();
    expect(after.delivered).toBeGreaterThan(before.delivered ?? 0);
    const kept = world.ctx.deps.db.$client
      .query<{ n: number }, [string]>(
        "SELECT count(*) AS n FROM webhook_deliveries WHERE tenant_id = ? AND status = 'delivered'",
      )
      .get(world.dev.tenant)?.n;
    expect(after.delivered).toBeLessThan(kept ?? 0);
    // Dead ones count by their last attempt: made two days ago, they may have died within the day.
    const plant = (id: string, lastAttemptAt: number) =>
      world.ctx.deps.db.$client
        .query(
          `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status,
             attempts, due_at, created_at, last_attempt_at)
           VALUES (?, ?, ?, 'n-old', 'alert.fired', '{}', 'dead', 8, 0, 0, ?)`,
        )
        .run(id, world.dev.tenant, endpointId, lastAttemptAt);
    const twoDaysAgo = world.ctx.clock.now() - 48 * 3600 * 1000;
    plant(`${old.slice(0, 10)}${"Y".repeat(16)}`, world.ctx.clock.now());
    plant(`${old.slice(0, 10)}${"X".repeat(16)}`, twoDaysAgo);
    expect((await stats()).dead).toBe((after.dead ?? 0) + 1);
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
