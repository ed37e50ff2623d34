import { expect, test } from "bun:test";
import { waitFor } from "../../testing/ports";
import { heldReceivers, type Receiver, startReceiver } from "../../testing/receiver";
import { type WebhookWorld, webhookWorld } from "../../testing/webhooks";
import { sharesOf } from "./fair-share";

// Another tenant's deliveries queued behind the backlog of an endpoint whose receiver hangs.
const ENDPOINT_SHARE = sharesOf(4).endpoint;

/**
 * A world of four slots with one endpoint (acme's) whose receiver hangs and another tenant's
 * endpoint on a healthy receiver, for `run`; the dispatcher is left for `run` to start.
 */
async function behindAStuckEndpoint(
  run: (s: { world: WebhookWorld; stuck: Receiver; stuckId: string; other: Receiver }) => Promise<void>,
): Promise<void> {
  const world = await webhookWorld({ WEBHOOK_CONCURRENCY: "4", WEBHOOK_TIMEOUT_MS: "10000" });
  const { receivers, release: unblock } = heldReceivers(1);
  const [stuck] = receivers as [Receiver];
  const other = startReceiver();
  try {
    const { id: stuckId } = await world.createEndpoint(stuck.url);
    await world.ctx.req("POST", "/v1/webhooks/endpoints", { body: { url: other.url }, headers: world.outsider.auth });
    await run({ world, stuck, stuckId, other });
  } finally {
    unblock();
    await world.ctx.deps.webhooks.dispatcher.stop();
    await stuck.close();
    await other.close();
    await world.ctx.close();
  }
}

/** A notification to the other tenant's own user, which its endpoint gets. */
async function notifyOutsider(world: WebhookWorld, title: string): Promise<void> {
  const { outsider } = world;
  const sent = await world.ctx.req("POST", "/v1/notifications", {
    body: { recipients: { user_ids: [outsider.userId] }, type: "alert.fired", title },
    headers: outsider.auth,
  });
  expect(sent.status).toBe(201);
}

test(
  "another tenant's delivery queued behind a hanging receiver's whole backlog still goes out",
  () =>
    behindAStuckEndpoint(async ({ world, stuck, other }) => {
      // More than any one look at the due deliveries takes in (four times the free slots).
      for (let i = 0; i < 40; i++) await world.notify("alert.fired");
      await notifyOutsider(world, "t");
      world.ctx.deps.webhooks.dispatcher.start();
      await waitFor(() => other.received.length === 1, 3000, "the delivery queued behind the backlog");
      expect(stuck.received).toHaveLength(ENDPOINT_SHARE);
    }),
  30_000,
);

test(
  "behind a backlog that takes a while to look past, each new delivery of another tenant still goes out",
  () =>
    behindAStuckEndpoint(async ({ world, stuck, stuckId, other }) => {
      // Enough that looking past it takes milliseconds, so the next look waits its turn: nothing
      // else wakes the dispatcher while the stuck attempts hang, so the wait must end by itself.
      const sqlite = world.ctx.deps.db.$client;
      const plant = sqlite.prepare(
        `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status, attempts, due_at, created_at)
       VALUES (?, 'acme', ?, 'n', 'alert.fired', '{}', 'pending', 0, ?, 0)`,
      );
      sqlite.transaction(() => {
        for (let i = 0; i < 50_000; i++) plant.run(`backlog-${String(i).padStart(6, "0")}`, stuckId, i);
      })();
      world.ctx.deps.webhooks.dispatcher.start();
      await waitFor(() => stuck.received.length === ENDPOINT_SHARE, 3000, "the stuck endpoint's share in flight");
      for (let n = 1; n <= 3; n++) await notifyOutsider(world, `t${n}`);
      await waitFor(() => other.received.length === 3, 3000, "the deliveries queued behind the backlog");
      expect(stuck.received).toHaveLength(ENDPOINT_SHARE);
    }),
  30_000,
);

test("a dispatcher with its slots nearly full and a look behind put off waits, rather than spinning", async () => {
  const world = await webhookWorld({ WEBHOOK_CONCURRENCY: "16", WEBHOOK_TIMEOUT_MS: "10000" });
  const { receivers, release: unblock } = heldReceivers(3);
  const [stuck, b, c] = receivers as [Receiver, Receiver, Receiver];
  const dispatcher = world.ctx.deps.webhooks.dispatcher;
  // Private, counted from outside: how many leases it tries while nothing changes.
  const leasing = dispatcher as unknown as { lease(): Promise<number> };
  try {
    const { id: stuckId } = await world.createEndpoint(stuck.url);
    const endpointOf = async (url: string) => {
      const res = await world.ctx.req("POST", "/v1/webhooks/endpoints", {
        body: { url },
        headers: world.outsider.auth,
      });
      return ((await res.json()) as { endpoint: { id: string } }).endpoint.id;
    };
    const [bId, cId] = [await endpointOf(b.url), await endpointOf(c.url)];
    const sqlite = world.ctx.deps.db.$client;
    const plant = sqlite.prepare(
      `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status, attempts, due_at, created_at)
       VALUES (?, ?, ?, 'n', 'alert.fired', '{}', 'pending', 0, ?, 0)`,
    );
    // A backlog whose look behind takes long enough to be put off afterwards.
    sqlite.transaction(() => {
      for (let i = 0; i < 50_000; i++) plant.run(`backlog-${String(i).padStart(6, "0")}`, "acme", stuckId, 100 + i);
    })();
    dispatcher.start();
    await waitFor(() => stuck.received.length === sharesOf(16).endpoint, 3000, "the stuck endpoint's share");
    // Seven of the other tenant's, inside the window: 13 of 16 slots taken, fewer free than a lease waits for.
    sqlite.transaction(() => {
      for (let i = 0; i < 4; i++) plant.run(`other-b-${i}`, "globex", bId, 110 + i);
      for (let i = 0; i < 3; i++) plant.run(`other-c-${i}`, "globex", cId, 120 + i);
    })();
    const lease = leasing.lease.bind(dispatcher);
    let leases = 0;
    leasing.lease = () => {
      leases++;
      return lease();
    };
    dispatcher.wake();
    await waitFor(() => b.received.length + c.received.length === 7, 3000, "the other tenant's deliveries in flight");
    const before = leases;
    await Bun.sleep(500);
    // Nothing finishes while every receiver hangs: nothing to lease until something does (it spun ~780 times a second).
    expect(leases - before).toBeLessThan(5);
  } finally {
    unblock();
    await dispatcher.stop();
    for (const receiver of receivers) await receiver.close();
    await world.ctx.close();
  }
}, 30_000);
