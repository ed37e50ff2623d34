import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Receiver, startReceiver } from "../../testing/receiver";
import { type WebhookWorld, webhookWorld } from "../../testing/webhooks";
import { REPLAY_BATCH } from "./deliveries";

/** Replays of thousands of deliveries, in a world of their own: they would crowd other tests' lists. */
let world: WebhookWorld;
let receiver: Receiver;
let endpointId: string;

beforeAll(async () => {
  world = await webhookWorld();
  receiver = startReceiver();
  ({ id: endpointId } = await world.createEndpoint(receiver.url));
});
afterAll(async () => {
  await receiver.close();
  await world.ctx.close();
});

const drain = () => world.ctx.deps.webhooks.dispatcher.drain();

describe("large replays", () => {
  test("a replay larger than a batch goes in batches, serves other requests meanwhile, and is audited once", async () => {
    const since = new Date(world.ctx.clock.now()).toISOString();
    const count = REPLAY_BATCH * 2 + 100;
    // Notifications made together share one group commit, as under load.
    for (let made = 0; made < count; made += 100)
      await Promise.all(Array.from({ length: Math.min(100, count - made) }, () => world.notify()));
    await drain();
    expect(receiver.received).toHaveLength(count);
    const auditedBefore = world.ctx.auditEvents("delivery.replay").length;
    const order: string[] = [];
    const replay = world.ctx
      .req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, { body: { since }, headers: world.admin.auth })
      .then(async (res) => {
        order.push("replay");
        expect(res.status).toBe(200);
        return (await res.json()) as { replayed: number; complete: boolean };
      });
    const health = world.ctx.req("GET", "/health").then(() => order.push("health"));
    const [replayed] = await Promise.all([replay, health]);
    expect(replayed).toEqual({ replayed: count, complete: true });
    expect(order).toEqual(["health", "replay"]);
    expect(world.ctx.auditEvents("delivery.replay").length - auditedBefore).toBe(1);
    await drain();
    const times = new Map<string, number>();
    for (const got of receiver.received) times.set(got.id, (times.get(got.id) ?? 0) + 1);
    expect(times.size).toBe(count);
    expect([...times.values()].every((n) => n === 2)).toBe(true);

    // Again, with every delivery it queued failing between its batches (as the dispatcher would
    // record them against a receiver that is down): those are behind the replay's cursor, not
    // queued a second time.
    const failQueued = world.ctx.deps.db.$client.query(
      "UPDATE webhook_deliveries SET status = 'failed', attempts = 1 WHERE status = 'pending' AND endpoint_id = ?",
    );
    let replaying = true;
    const again = world.ctx
      .req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, { body: { since }, headers: world.admin.auth })
      .then((res) => res.json())
      .finally(() => {
        replaying = false;
      });
    let turns = 0;
    for (; replaying; turns++) {
      failQueued.run(endpointId);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    expect(turns).toBeGreaterThan(2);
    expect(await again).toEqual({ replayed: count, complete: true });

    // And once more, the endpoint deleted after the first batch: the replay stops and says so.
    const deleting = world.ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/replay`, {
      body: { since },
      headers: world.admin.auth,
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
    world.ctx.deps.db.$client.run("UPDATE webhook_endpoints SET deleted_at = ? WHERE id = ?", [
      world.ctx.clock.now(),
      endpointId,
    ]);
    expect(await (await deleting).json()).toEqual({ replayed: REPLAY_BATCH, complete: false });
  }, 30_000);
});
