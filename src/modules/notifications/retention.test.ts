import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, login, seedAndLogin } from "../../testing/identity";
import { NotificationPruner, PRUNE_SQL, startNotificationRetention } from "./retention";

const DAY_MS = 86_400_000;
const RETENTION_DAYS = 90;

let ctx: TestContext;
let dev: LoggedIn;
let admin: LoggedIn;
let alice: LoggedIn;
let bob: LoggedIn;

const count = (sql: string, ...args: string[]) =>
  (ctx.deps.db.$client.query(`SELECT count(*) AS n FROM ${sql}`).get(...args) as { n: number }).n;

/** A notification to alice and bob, with one delivery (the tenant has one endpoint) left in `status`. */
async function notify(title: string, status: "pending" | "delivered" | "dead", attempts = 0): Promise<string> {
  const res = await ctx.req("POST", "/v1/notifications", {
    body: { recipients: { user_ids: [alice.userId, bob.userId] }, type: "retention.test", title },
    headers: dev.auth,
  });
  expect(res.status).toBe(201);
  const { notification } = (await res.json()) as { notification: { id: string } };
  const sqlite = ctx.deps.db.$client;
  const delivery = sqlite
    .query<{ id: string }, [string]>("SELECT id FROM webhook_deliveries WHERE notification_id = ?")
    .get(notification.id);
  if (!delivery) throw new Error("no delivery written");
  sqlite.run("UPDATE webhook_deliveries SET status = ?, attempts = ? WHERE id = ?", [status, attempts, delivery.id]);
  for (let i = 0; i < attempts; i++) {
    sqlite.run(
      "INSERT INTO webhook_attempts (delivery_id, tenant_id, attempted_at, duration_ms, status_code, outcome) VALUES (?, 'acme', ?, 5, 500, 'failed')",
      [delivery.id, ctx.clock.now()],
    );
  }
  return notification.id;
}

async function inboxTitles(who: LoggedIn): Promise<string[]> {
  const res = await ctx.req("GET", "/v1/notifications?limit=100", { headers: who.auth });
  expect(res.status).toBe(200);
  return ((await res.json()) as { notifications: { title: string }[] }).notifications.map((n) => n.title).sort();
}

async function loginAgain(): Promise<void> {
  dev = await login(ctx, dev);
  admin = await login(ctx, admin);
  alice = await login(ctx, alice);
  bob = await login(ctx, bob);
}

const fresh: string[] = [];

beforeAll(async () => {
  ctx = await createTestContext();
  // Ids are ULIDs, monotonic within the process: ids other test files made at later (real or
  // advanced) times would give these notifications a later time part. Start past all of them.
  ctx.clock.advance(Date.now() - ctx.clock.now() + 100 * 365 * DAY_MS);
  dev = await seedAndLogin(ctx, "acme", "developer");
  admin = await seedAndLogin(ctx, "acme", "admin");
  alice = await seedAndLogin(ctx, "acme", "viewer");
  bob = await seedAndLogin(ctx, "acme", "viewer");
  const endpoint = await ctx.req("POST", "/v1/webhooks/endpoints", {
    body: { url: "http://127.0.0.1:9/hook" },
    headers: admin.auth,
  });
  expect(endpoint.status).toBe(201);
  // Old: seven finished (more than a batch of 3), one still waiting for its delivery.
  for (let i = 0; i < 4; i++) await notify(`old delivered ${i}`, "delivered", 1);
  for (let i = 0; i < 3; i++) await notify(`old dead ${i}`, "dead", 2);
  await notify("old pending", "pending", 1);
  ctx.clock.advance((RETENTION_DAYS + 1) * DAY_MS);
  await loginAgain();
  fresh.push(await notify("recent delivered", "delivered", 1));
  expect(await inboxTitles(alice)).toHaveLength(9);
});
afterAll(() => ctx.close());

describe("notification retention", () => {
  test("stopped before the inbox is done, it leaves every notification an inbox row points at", async () => {
    const pruner = new NotificationPruner(ctx.deps.db.$client, 3);
    let batches = 0;
    const partial = await pruner.pruneOlderThan(ctx.clock.now() - RETENTION_DAYS * DAY_MS, () => ++batches > 4);
    expect(partial.deliveries).toBe(7);
    expect(partial.notifications).toBe(0);
    expect(partial.inboxItems).toBeGreaterThan(0);
    expect(count("notifications")).toBe(9);
    expect(ctx.deps.db.$client.query("PRAGMA foreign_key_check").all()).toEqual([]);
  });

  test("deletes old notifications, their inbox rows and finished deliveries; keeps what is waiting and what is recent", async () => {
    const pruner = new NotificationPruner(ctx.deps.db.$client, 3);
    const result = await pruner.pruneOlderThan(ctx.clock.now() - RETENTION_DAYS * DAY_MS);
    expect(result.notifications).toBe(8);
    expect(result.deliveries).toBe(0); // the first pass took them
    expect(count("notifications")).toBe(1);
    expect(await inboxTitles(alice)).toEqual(["recent delivered"]);
    expect(await inboxTitles(bob)).toEqual(["recent delivered"]);
    const unread = await ctx.req("GET", "/v1/notifications/unread-count", { headers: alice.auth });
    expect(await unread.json()).toMatchObject({ unread: 1 });
    const statuses = ctx.deps.db.$client
      .query<{ status: string; notification_id: string }, []>(
        "SELECT status, notification_id FROM webhook_deliveries ORDER BY id",
      )
      .all();
    // The waiting delivery stays (its payload carries everything it sends), and so do its attempts.
    expect(statuses.map((row) => row.status)).toEqual(["pending", "delivered"]);
    expect(statuses[1]?.notification_id).toBe(fresh[0]);
    expect(count("webhook_attempts")).toBe(2);
    const sqlite = ctx.deps.db.$client;
    expect(sqlite.query("PRAGMA foreign_key_check").all()).toEqual([]);
    expect((sqlite.query("PRAGMA foreign_keys").get() as { foreign_keys: number }).foreign_keys).toBe(1);
  });

  test("each batch is a primary-key range, not a scan of every delivery or inbox row", () => {
    const plan = (sql: string) => {
      const statement = ctx.deps.db.$client.prepare<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${sql}`);
      try {
        return statement
          .all()
          .map((row) => row.detail)
          .join("; ");
      } finally {
        statement.finalize();
      }
    };
    expect(plan(PRUNE_SQL.finishedDeliveries)).toBe(
      "SEARCH webhook_deliveries USING INDEX sqlite_autoindex_webhook_deliveries_1 (id>? AND id<?)",
    );
    expect(plan(PRUNE_SQL.nextUser)).toContain("COVERING INDEX sqlite_autoindex_inbox_items_1 (user_id>?)");
    expect(plan(PRUNE_SQL.deleteInbox)).toContain("sqlite_autoindex_inbox_items_1 (user_id=? AND notification_id<?)");
    expect(plan(PRUNE_SQL.oldNotifications)).toContain("sqlite_autoindex_notifications_1 (id<?)");
    expect(plan(PRUNE_SQL.deleteAttempts)).toContain("INDEX webhook_attempts_delivery (delivery_id=?)");
  });

  test("a second pass finds nothing, leaves foreign keys as it found them, and the API still works", async () => {
    const sqlite = ctx.deps.db.$client;
    const foreignKeys = () => (sqlite.query("PRAGMA foreign_keys").get() as { foreign_keys: number }).foreign_keys;
    sqlite.run("PRAGMA foreign_keys = OFF");
    const again = await new NotificationPruner(sqlite).pruneOlderThan(ctx.clock.now() - RETENTION_DAYS * DAY_MS);
    expect(foreignKeys()).toBe(0);
    sqlite.run("PRAGMA foreign_keys = ON");
    expect(again).toEqual({ notifications: 0, inboxItems: 0, deliveries: 0, attempts: 0 });
    await notify("after pruning", "pending");
    expect(await inboxTitles(alice)).toEqual(["after pruning", "recent delivered"]);
  });

  test("the worker prunes on its own and says what it removed", async () => {
    await notify("aged in the worker test", "delivered", 1);
    ctx.clock.advance((RETENTION_DAYS + 1) * DAY_MS);
    const pruned = () => ctx.logs.find((line) => line.msg === "old notifications pruned");
    const worker = startNotificationRetention(ctx.deps.db.$client, RETENTION_DAYS, ctx.deps, 0);
    for (let i = 0; i < 400 && !pruned(); i++) await Bun.sleep(5);
    await worker.stop();
    // "recent delivered", "after pruning" and this one; the two deliveries still waiting stay.
    expect(pruned()).toMatchObject({ notifications: 3, inboxItems: 6, deliveries: 2, attempts: 2 });
    expect(count("notifications")).toBe(0);
    expect(count("webhook_deliveries WHERE status = 'pending'")).toBe(2);
    const metrics = await ctx.deps.metrics.registry.metrics();
    for (const line of [
      'notification_rows_pruned_total{table="notifications"} 3',
      'notification_rows_pruned_total{table="inbox_items"} 6',
      'notification_rows_pruned_total{table="webhook_deliveries"} 2',
      'notification_rows_pruned_total{table="webhook_attempts"} 2',
    ])
      expect(metrics).toContain(line);
  });
});
