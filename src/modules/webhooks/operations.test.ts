import { describe, expect, test } from "bun:test";
import { ulid, ulidFloor } from "../../lib/secrets";
import { deliveryOf, useWebhookWorld } from "../../testing/webhooks";

// Operating the queue: retries by hand, replays, the lists, stats and the queue-depth gauge.
const t = useWebhookWorld();
const { drain, advance } = t;
const freshEndpoint = t.freshEndpoint;
const latencyCount = async () =>
  (await t.world.ctx.deps.metrics.webhookLatency.get()).values.find(
    (v) => v.metricName === "webhook_delivery_latency_seconds_count",
  )?.value ?? 0;

describe("operations", () => {
  test("retry a dead delivery: 202, audited, delivered; retrying a delivered one is 409", async () => {
    await freshEndpoint();
    t.receiver.respond = () => new Response(null, { status: 500 });
    const sent = await t.world.notify();
    const id = deliveryOf(t.world, sent.id);
    for (let i = 0; i < 5; i++) {
      await drain();
      await advance(1300);
    }
    expect((await t.world.delivery(id)).delivery.status).toBe("dead");
    const latencyBefore = await latencyCount();
    t.receiver.respond = () => new Response(null, { status: 204 });
    const viewerTry = await t.world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, {
      headers: t.world.viewer.auth,
    });
    expect(viewerTry.status).toBe(403);
    const outsiderTry = await t.world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, {
      headers: t.world.outsider.auth,
    });
    expect(outsiderTry.status).toBe(404);
    const res = await t.world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, { headers: t.world.admin.auth });
    expect(res.status).toBe(202);
    expect(t.world.ctx.auditEvents("delivery.retry").at(-1)?.target_id).toBe(id);
    await drain();
    expect((await t.world.delivery(id)).delivery.status).toBe("delivered");
    // Its age is how long the receiver stayed broken, not delivery delay.
    expect(await latencyCount()).toBe(latencyBefore);
    const again = await t.world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, { headers: t.world.admin.auth });
    expect(again.status).toBe(409);
  });

  test("retry a failed delivery (still on its schedule): its delay counts, as the scheduled retry's would", async () => {
    await freshEndpoint();
    t.receiver.respond = () => new Response(null, { status: 500 });
    const id = deliveryOf(t.world, (await t.world.notify()).id);
    await drain();
    expect((await t.world.delivery(id)).delivery.status).toBe("failed");
    const latencyBefore = await latencyCount();
    t.receiver.respond = () => new Response(null, { status: 204 });
    const res = await t.world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, { headers: t.world.admin.auth });
    expect(res.status).toBe(202);
    await drain();
    expect((await t.world.delivery(id)).delivery.status).toBe("delivered");
    expect(await latencyCount()).toBe(latencyBefore + 1);
  });

  test("replay sends an endpoint's deliveries since a time again: same id, same bytes", async () => {
    const { id: endpointId } = await freshEndpoint();
    const latencyBefore = await latencyCount();
    const since = new Date(t.world.ctx.clock.now()).toISOString();
    await t.world.notify();
    await t.world.notify();
    await drain();
    const first = t.receiver.received.map((r) => [r.id, r.body]);
    const res = await t.world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, {
      body: { since },
      headers: t.world.admin.auth,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ replayed: 2, complete: true });
    await drain();
    const replayed = t.receiver.received.slice(2).map((r) => [r.id, r.body]);
    expect(replayed.sort()).toEqual(first.sort());
    // Replays are not delivery delays: only the two first deliveries are in the latency histogram.
    expect((await latencyCount()) - latencyBefore).toBe(2);
    for (const since of ["2026-02-30T00:00:00Z", "2026-12-01"]) {
      const refused = await t.world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, {
        body: { since },
        headers: t.world.admin.auth,
      });
      expect(refused.status).toBe(422);
      expect((await refused.json()).errors[0]).toMatchObject({ in: "body", field: "since" });
    }
    const bad = await t.world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, {
      body: { since: "yesterday" },
      headers: t.world.admin.auth,
    });
    expect(bad.status).toBe(422);
  });

  test("a dead delivery that never arrived, replayed or retried by hand once the receiver is back, is no delivery delay", async () => {
    const { id: endpointId } = await freshEndpoint();
    const since = new Date(t.world.ctx.clock.now()).toISOString();
    // Dead after a schedule shorter than today's (one attempt), as after a change of WEBHOOK_RETRY_SCHEDULE.
    const plantDead = () => {
      const id = ulid(t.world.ctx.clock.now());
      t.world.ctx.deps.db.$client
        .query(
          `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status,
             attempts, due_at, created_at, last_attempt_at)
           VALUES (?1, ?2, ?3, ?1, 'alert.fired', '{}', 'dead', 1, 0, ?4, ?4)`,
        )
        .run(id, t.world.dev.tenant, endpointId, t.world.ctx.clock.now());
      return id;
    };
    const replayed = plantDead();
    const retried = plantDead();
    await advance(60_000);
    const latencyBefore = await latencyCount();
    const replay = await t.world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, {
      body: { since },
      headers: t.world.admin.auth,
    });
    expect(await replay.json()).toEqual({ replayed: 2, complete: true });
    await drain();
    expect((await t.world.delivery(replayed)).delivery.status).toBe("delivered");
    expect((await t.world.delivery(retried)).delivery.status).toBe("delivered");
    // Retried by hand this time: the same holds.
    t.world.ctx.deps.db.$client.run(
      "UPDATE webhook_deliveries SET status = 'dead', resent_at = NULL, delivered_at = NULL WHERE id = ?",
      [retried],
    );
    const retry = await t.world.ctx.req("POST", `/v1/webhooks/deliveries/${retried}/retry`, {
      headers: t.world.admin.auth,
    });
    expect(retry.status).toBe(202);
    await drain();
    expect((await t.world.delivery(retried)).delivery.status).toBe("delivered");
    expect(t.receiver.received).toHaveLength(3);
    expect(await latencyCount()).toBe(latencyBefore);
  });

  test("list by status, stats and the queue-depth gauge agree", async () => {
    const { id: planted } = await freshEndpoint();
    // One of every finished status besides what this test makes (a failed one): delivered, dead.
    await t.world.notify();
    await drain();
    t.world.ctx.deps.db.$client
      .query(
        `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status,
           attempts, due_at, created_at, last_attempt_at)
         VALUES (?, ?, ?, 'n-dead', 'alert.fired', '{}', 'dead', 8, 0, 0, ?)`,
      )
      .run(ulid(t.world.ctx.clock.now()), t.world.dev.tenant, planted, t.world.ctx.clock.now());
    t.receiver.respond = () => new Response(null, { status: 500 });
    await t.world.notify();
    await drain();
    const failed = await t.world.ctx.req("GET", "/v1/webhooks/deliveries?status=failed", { headers: t.world.dev.auth });
    const list = (await failed.json()) as { deliveries: { status: string }[] };
    expect(list.deliveries.length).toBeGreaterThanOrEqual(1);
    expect(list.deliveries.every((d) => d.status === "failed")).toBe(true);
    const stats = (await (
      await t.world.ctx.req("GET", "/v1/webhooks/stats", { headers: t.world.dev.auth })
    ).json()) as {
      queue: Record<string, number>;
      success_rate_24h: number;
    };
    expect(stats.queue.failed).toBe(list.deliveries.length);
    expect(stats.success_rate_24h).toBeGreaterThan(0);
    expect(stats.success_rate_24h).toBeLessThan(1);
    // A ratio to four decimals, as the feedback summary's.
    expect(Math.round(stats.success_rate_24h * 10_000)).toBe(stats.success_rate_24h * 10_000);
    const gauge = await t.world.ctx.deps.metrics.registry.getSingleMetricAsString("webhook_queue_depth");
    expect(gauge).toContain(`webhook_queue_depth{status="failed"} ${stats.queue.failed}`);
    const bad = await t.world.ctx.req("GET", "/v1/webhooks/deliveries?status=lost", { headers: t.world.dev.auth });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { errors: { in: string; field: string; message: string }[] }).errors[0]).toEqual({
      in: "query",
      field: "status",
      message: "Expected one of pending, leased, failed, delivered, dead",
    });
    // No status filter means every status, not the first one.
    const all = await t.world.ctx.req("GET", "/v1/webhooks/deliveries?limit=200", { headers: t.world.dev.auth });
    const statuses = new Set(
      ((await all.json()) as { deliveries: { status: string }[] }).deliveries.map((d) => d.status),
    );
    expect([...statuses].sort()).toEqual(expect.arrayContaining(["dead", "delivered", "failed"]));
    // Unfiltered pages merge every status newest first, each delivery once.
    const everything = t.world.ctx.deps.db.$client
      .query<{ id: string }, [string]>("SELECT id FROM webhook_deliveries WHERE tenant_id = ? ORDER BY id DESC")
      .all("acme")
      .map((row) => row.id);
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await t.world.ctx.req("GET", `/v1/webhooks/deliveries?limit=3${cursor ? `&cursor=${cursor}` : ""}`, {
        headers: t.world.dev.auth,
      });
      const body = (await page.json()) as { deliveries: { id: string }[]; next_cursor: string | null };
      paged.push(...body.deliveries.map((d) => d.id));
      cursor = body.next_cursor;
    } while (cursor);
    expect(paged).toEqual(everything);
    // A cursor the list never returned is a 422 naming it, not the first page or an empty one.
    for (const garbage of ["x", "0", "%25%25"]) {
      const bad = await t.world.ctx.req("GET", `/v1/webhooks/deliveries?cursor=${garbage}`, {
        headers: t.world.dev.auth,
      });
      expect(bad.status).toBe(422);
      expect((await bad.json()).errors[0]).toMatchObject({ in: "query", field: "cursor" });
    }
    const endpointId = t.world.ctx.deps.webhooks.endpoints.list("acme", { limit: 1000 })[0]?.id ?? "";
    const ofEndpoint = await t.world.ctx.req("GET", `/v1/webhooks/deliveries?endpoint_id=${endpointId}&limit=200`, {
      headers: t.world.dev.auth,
    });
    const mine = ((await ofEndpoint.json()) as { deliveries: { endpoint_id: string }[] }).deliveries;
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((d) => d.endpoint_id === endpointId)).toBe(true);
    const zero = await t.world.ctx.req("GET", "/v1/webhooks/deliveries?limit=0", { headers: t.world.dev.auth });
    expect(((await zero.json()) as { errors: { in: string; field: string }[] }).errors[0]).toMatchObject({
      in: "query",
      field: "limit",
    });
    const outsider = (await (
      await t.world.ctx.req("GET", "/v1/webhooks/deliveries", { headers: t.world.outsider.auth })
    ).json()) as { deliveries: unknown[] };
    expect(outsider.deliveries).toHaveLength(0);
  });

  test("deleting an endpoint marks what waited for it dead", async () => {
    const { id: endpointId } = await freshEndpoint();
    t.receiver.respond = () => new Response(null, { status: 500 });
    const sent = await t.world.notify();
    await drain();
    const res = await t.world.ctx.req("DELETE", `/v1/webhooks/endpoints/${endpointId}`, {
      headers: t.world.admin.auth,
    });
    expect(res.status).toBe(204);
    const id = deliveryOf(t.world, sent.id);
    expect((await t.world.delivery(id)).delivery).toMatchObject({ status: "dead", last_error: "endpoint deleted" });
    const retry = await t.world.ctx.req("POST", `/v1/webhooks/deliveries/${id}/retry`, { headers: t.world.admin.auth });
    expect(retry.status).toBe(409);
    expect(((await retry.json()) as { detail: string }).detail).toContain("deleted");
    expect(t.world.ctx.auditEvents("webhook.delete").at(-1)?.target_id).toBe(endpointId);
  });
  test("stats count the finished deliveries of the last 24 hours, and every waiting one", async () => {
    const stats = async () =>
      (
        (await (await t.world.ctx.req("GET", "/v1/webhooks/stats", { headers: t.world.dev.auth })).json()) as {
          queue: Record<string, number>;
        }
      ).queue;
    const { id: endpointId } = await freshEndpoint();
    t.receiver.respond = () => new Response(null, { status: 204 });
    const before = await stats();
    // Delivered two days ago (ids are ULIDs, which carry their creation time): kept for the
    // retention's 90 days, but no longer counted, so a dashboard poll stays short.
    const old = `${ulidFloor(t.world.ctx.clock.now() - 48 * 3600 * 1000).slice(0, 10)}${"Z".repeat(16)}`;
    t.world.ctx.deps.db.$client
      .query(
        `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status,
           attempts, due_at, created_at, delivered_at)
         VALUES (?, ?, ?, 'n-old', 'alert.fired', '{}', 'delivered', 1, 0, 0, 0)`,
      )
      .run(old, t.world.dev.tenant, endpointId);
    await t.world.notify();
    await drain();
    const after = await stats();
    expect(after.delivered).toBeGreaterThan(before.delivered ?? 0);
    const kept = t.world.ctx.deps.db.$client
      .query<{ n: number }, [string]>(
        "SELECT count(*) AS n FROM webhook_deliveries WHERE tenant_id = ? AND status = 'delivered'",
      )
      .get(t.world.dev.tenant)?.n;
    expect(after.delivered).toBeLessThan(kept ?? 0);
    // Dead ones count by their last attempt: made two days ago, they may have died within the day.
    const plant = (id: string, lastAttemptAt: number) =>
      t.world.ctx.deps.db.$client
        .query(
          `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status,
             attempts, due_at, created_at, last_attempt_at)
           VALUES (?, ?, ?, 'n-old', 'alert.fired', '{}', 'dead', 8, 0, 0, ?)`,
        )
        .run(id, t.world.dev.tenant, endpointId, lastAttemptAt);
    const twoDaysAgo = t.world.ctx.clock.now() - 48 * 3600 * 1000;
    plant(`${old.slice(0, 10)}${"Y".repeat(16)}`, t.world.ctx.clock.now());
    plant(`${old.slice(0, 10)}${"X".repeat(16)}`, twoDaysAgo);
    expect((await stats()).dead).toBe((after.dead ?? 0) + 1);
  });
});
