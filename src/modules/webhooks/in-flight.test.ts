import { afterAll, beforeAll, expect, test } from "bun:test";
import { waitFor } from "../../testing/ports";
import { heldReceivers, type Receiver, startReceiver } from "../../testing/receiver";
import { type WebhookWorld, webhookWorld } from "../../testing/webhooks";
import { sharesOf } from "./fair-share";

let world: WebhookWorld;
let hanging: Receiver;
let healthy: Receiver;
let release: () => void = () => undefined;
const ENDPOINT_SHARE = sharesOf(4).endpoint;

beforeAll(async () => {
  // Four slots: any one tenant may hold three, one stays free for the others; any one endpoint
  // half its tenant's share (one).
  world = await webhookWorld({ WEBHOOK_CONCURRENCY: "4", WEBHOOK_TIMEOUT_MS: "10000" });
  const held = heldReceivers(1);
  [hanging] = held.receivers as [Receiver];
  release = held.release;
  healthy = startReceiver();
});
afterAll(async () => {
  release();
  await world.ctx.deps.webhooks.dispatcher.stop();
  await hanging.close();
  await healthy.close();
  await world.ctx.close();
});

/** Attempts in flight: the slots they hold, and what their answer does once the endpoint changed meanwhile. */
test("a receiver that hangs, fed a backlog, leaves a slot for another tenant's webhooks", async () => {
  const dispatcher = world.ctx.deps.webhooks.dispatcher;
  await world.createEndpoint(hanging.url);
  for (let i = 0; i < 10; i++) await world.notify("alert.fired");
  dispatcher.start();
  await waitFor(() => hanging.received.length === ENDPOINT_SHARE, 5000, "the hanging receiver's share of the slots");

  const { outsider } = world;
  const endpoint = await world.ctx.req("POST", "/v1/webhooks/endpoints", {
    body: { url: healthy.url },
    headers: outsider.auth,
  });
  expect(endpoint.status).toBe(201);
  const sent = await world.ctx.req("POST", "/v1/notifications", {
    body: { recipients: { user_ids: [outsider.userId] }, type: "alert.fired", title: "t" },
    headers: outsider.auth,
  });
  expect(sent.status).toBe(201);
  // Before the fairness share this waited for the hanging attempts to time out, one slot at a time.
  await waitFor(() => healthy.received.length === 1, 3000, "the other tenant's delivery");
  expect(hanging.received).toHaveLength(ENDPOINT_SHARE);

  release();
  await waitFor(() => hanging.received.length === 10, 10_000, "the backlog once the receiver answers");
  const statuses = world.ctx.deps.db.$client
    .query<{ status: string; n: number }, []>("SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status")
    .all();
  await waitFor(
    () =>
      world.ctx.deps.db.$client
        .query<{ n: number }, []>("SELECT count(*) AS n FROM webhook_deliveries WHERE status != 'delivered'")
        .get()?.n === 0,
    5000,
    `every delivery delivered (${JSON.stringify(statuses)})`,
  );
}, 30_000);

test("a tenant whose endpoints all hang holds its share and no more: the other tenant still delivers", async () => {
  const many = await webhookWorld({ WEBHOOK_CONCURRENCY: "8", WEBHOOK_TIMEOUT_MS: "10000" });
  const { receivers: stuck, release: unblock } = heldReceivers(3);
  const other = startReceiver();
  try {
    for (const receiver of stuck) await many.createEndpoint(receiver.url);
    for (let i = 0; i < 10; i++) await many.notify("alert.fired");
    const { outsider } = many;
    await many.ctx.req("POST", "/v1/webhooks/endpoints", { body: { url: other.url }, headers: outsider.auth });
    many.ctx.deps.webhooks.dispatcher.start();
    const shares = sharesOf(8);
    const inFlight = () => stuck.reduce((sum, receiver) => sum + receiver.received.length, 0);
    // Three endpoints could hold three slots each (nine): the tenant's share stops them at six.
    await waitFor(() => inFlight() === shares.tenant, 5000, "the tenant's share of the slots");
    const sent = await many.ctx.req("POST", "/v1/notifications", {
      body: { recipients: { user_ids: [outsider.userId] }, type: "alert.fired", title: "t" },
      headers: outsider.auth,
    });
    expect(sent.status).toBe(201);
    await waitFor(() => other.received.length === 1, 3000, "the other tenant's delivery");
    expect(inFlight()).toBe(shares.tenant);
    expect(Math.max(...stuck.map((receiver) => receiver.received.length))).toBeLessThanOrEqual(shares.endpoint);
  } finally {
    unblock();
    await many.ctx.deps.webhooks.dispatcher.stop();
    for (const receiver of [...stuck, other]) await receiver.close();
    await many.ctx.close();
  }
}, 30_000);

test("a receiver that hangs, fed a backlog, leaves slots for its own tenant's other endpoints", async () => {
  const same = await webhookWorld({ WEBHOOK_CONCURRENCY: "16", WEBHOOK_TIMEOUT_MS: "10000" });
  const { receivers, release: unblock } = heldReceivers(1);
  const [stuck] = receivers as [Receiver];
  const sibling = startReceiver();
  try {
    await same.createEndpoint(stuck.url, { event_types: ["stuck.*"] });
    await same.createEndpoint(sibling.url, { event_types: ["fine.*"] });
    for (let i = 0; i < 40; i++) await same.notify("stuck.event");
    for (let i = 0; i < 20; i++) await same.notify("fine.event");
    same.ctx.deps.webhooks.dispatcher.start();
    // Before, the hanging endpoint took its whole tenant's share (12 of 16), and the sibling
    // waited for its attempts to time out.
    await waitFor(() => sibling.received.length === 20, 5000, "the sibling endpoint's deliveries");
    expect(stuck.received).toHaveLength(sharesOf(16).endpoint);
  } finally {
    unblock();
    await same.ctx.deps.webhooks.dispatcher.stop();
    await stuck.close();
    await sibling.close();
    await same.ctx.close();
  }
}, 30_000);

/**
 * A delivery whose attempt has reached a receiver that holds its answer until `answer`: the
 * endpoint's id, the delivery's row, and the receiver to close.
 */
async function attemptInFlight() {
  let answer: (response: Response) => void = () => undefined;
  const receiver = startReceiver();
  receiver.respond = () =>
    new Promise<Response>((resolve) => {
      answer = resolve;
    });
  const { id } = await world.createEndpoint(receiver.url);
  const sent = (await world.notify("alert.fired")).id;
  await waitFor(() => receiver.received.length === 1, 5000, "the attempt to reach the receiver");
  const delivery = () =>
    world.ctx.deps.db.$client
      .query<{ id: string; status: string; due_at: number; attempts: number }, [string, string]>(
        "SELECT id, status, due_at, attempts FROM webhook_deliveries WHERE notification_id = ? AND endpoint_id = ?",
      )
      .get(sent, id);
  return {
    id,
    delivery,
    answer: (response: Response) => answer(response),
    async close() {
      answer(new Response(null, { status: 204 }));
      await receiver.close();
    },
  };
}

test("an attempt in flight when its endpoint is disabled: its retry waits, parked, for an enable", async () => {
  const attempt = await attemptInFlight();
  try {
    const disabled = await world.ctx.req("POST", `/v1/webhooks/endpoints/${attempt.id}/disable`, {
      headers: world.admin.auth,
    });
    expect(disabled.status).toBe(200);
    attempt.answer(new Response(null, { status: 500 }));
    await waitFor(() => attempt.delivery()?.attempts === 1, 5000, "the attempt's outcome");
    expect(attempt.delivery()).toMatchObject({ status: "failed", due_at: Number.MAX_SAFE_INTEGER });

    const enabled = await world.ctx.req("POST", `/v1/webhooks/endpoints/${attempt.id}/enable`, {
      headers: world.admin.auth,
    });
    expect(enabled.status).toBe(200);
    expect(attempt.delivery()?.due_at).toBeLessThanOrEqual(world.ctx.clock.now());
  } finally {
    await attempt.close();
  }
}, 20_000);

test("an attempt in flight when its endpoint is deleted: the delivery is dead, and only the attempt made is logged", async () => {
  const attempt = await attemptInFlight();
  try {
    const deadLetters = async () => (await world.ctx.deps.metrics.webhookDead.get()).values[0]?.value ?? 0;
    const deadBefore = await deadLetters();
    const deleted = await world.ctx.req("DELETE", `/v1/webhooks/endpoints/${attempt.id}`, {
      headers: world.admin.auth,
    });
    expect(deleted.status).toBe(204);
    attempt.answer(new Response(null, { status: 500 }));
    await waitFor(() => attempt.delivery()?.status === "dead", 5000, "the attempt's outcome");
    // Nothing else is due for it: a retry leased after the delete would log an attempt never made.
    await world.ctx.deps.webhooks.dispatcher.drain();
    const id = attempt.delivery()?.id ?? "";
    expect(attempt.delivery()?.attempts).toBe(1);
    const log = world.ctx.deps.db.$client
      .query<{ status_code: number | null; outcome: string }, [string]>(
        "SELECT status_code, outcome FROM webhook_attempts WHERE delivery_id = ?",
      )
      .all(id);
    expect(log).toEqual([{ status_code: 500, outcome: "dead" }]);
    // An operator's delete, as for what waited: no dead letter, whose alert says retries ran out.
    expect(await deadLetters()).toBe(deadBefore);
  } finally {
    await attempt.close();
  }
}, 20_000);

test("a delivery leased as its endpoint is deleted is dead without an attempt", async () => {
  const attempt = await attemptInFlight();
  try {
    attempt.answer(new Response(null, { status: 500 }));
    await waitFor(() => attempt.delivery()?.status === "failed", 5000, "the first attempt's outcome");
    const id = attempt.delivery()?.id ?? "";
    // The delete as another process's: the row's own endpoint, with the delivery already leased here.
    const sqlite = world.ctx.deps.db.$client;
    sqlite.run("UPDATE webhook_deliveries SET due_at = 0 WHERE id = ?", [id]);
    sqlite.run("UPDATE webhook_endpoints SET deleted_at = ? WHERE id = ?", [world.ctx.clock.now(), attempt.id]);
    // The first time, the write fails (another process holding the database past busy_timeout):
    // logged, and the delivery waits for its lease to run out; nothing ends the process.
    const statements = (world.ctx.deps.webhooks.dispatcher as unknown as { sql: { abandon: { run: unknown } } }).sql;
    const abandon = statements.abandon.run;
    statements.abandon.run = () => {
      statements.abandon.run = abandon;
      throw new Error("database is locked");
    };
    await world.ctx.deps.webhooks.dispatcher.drain();
    expect(attempt.delivery()?.status).toBe("leased");
    expect(world.ctx.logs.some((line) => line.msg === "abandoning a webhook delivery failed")).toBe(true);
    await world.advance(10_000 + 5_000 + 1);
    await world.ctx.deps.webhooks.dispatcher.drain();
    expect(attempt.delivery()).toMatchObject({ status: "dead", attempts: 1 });
    const attempts = sqlite.query("SELECT count(*) AS n FROM webhook_attempts WHERE delivery_id = ?").get(id);
    expect(attempts).toEqual({ n: 1 });
  } finally {
    await attempt.close();
  }
}, 20_000);

test("an attempt that outlived its lease records itself but leaves the delivery to whoever leased it again", async () => {
  const attempt = await attemptInFlight();
  try {
    const sqlite = world.ctx.deps.db.$client;
    const leased = attempt.delivery();
    expect(leased?.status).toBe("leased");
    // As another dispatcher would, once the lease had run out: a lease of its own.
    sqlite.run("UPDATE webhook_deliveries SET due_at = due_at + 1 WHERE id = ?", [leased?.id ?? ""]);
    const latencies = async () =>
      (await world.ctx.deps.metrics.webhookLatency.get()).values.find(
        (v) => v.metricName === "webhook_delivery_latency_seconds_count",
      )?.value ?? 0;
    const delivered = async () =>
      (await world.ctx.deps.metrics.webhookAttempts.get()).values.find((v) => v.labels.outcome === "delivered")
        ?.value ?? 0;
    const before = await latencies();
    const deliveredBefore = await delivered();
    attempt.answer(new Response(null, { status: 204 }));
    const recorded = () =>
      sqlite
        .query<{ n: number }, [string]>("SELECT count(*) AS n FROM webhook_attempts WHERE delivery_id = ?")
        .get(leased?.id ?? "")?.n;
    await waitFor(() => recorded() === 1, 5000, "the attempt to be recorded");
    expect(attempt.delivery()).toMatchObject({ status: "leased", due_at: (leased?.due_at ?? 0) + 1 });
    expect(await latencies()).toBe(before);
    // Nor its outcome: the attempt that holds the lease now counts the delivery's.
    expect(await delivered()).toBe(deliveredBefore);
  } finally {
    await attempt.close();
  }
}, 20_000);
