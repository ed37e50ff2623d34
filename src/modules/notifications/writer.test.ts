import { afterAll, beforeAll, expect, test } from "bun:test";
import { ulid } from "../../lib/secrets";
import { createTestContext, type TestContext } from "../../testing/app";
import { seedUser } from "../../testing/identity";
import type { NotificationRow } from "./service";
import { type NotificationWrite, NotificationWriter } from "./writer";

let ctx: TestContext;
let writer: NotificationWriter;
let endpointId: string;
let users: string[];

beforeAll(async () => {
  ctx = await createTestContext();
  users = [(await seedUser(ctx, "acme", "viewer")).userId, (await seedUser(ctx, "acme", "viewer")).userId];
  endpointId = ulid();
  ctx.deps.db.$client
    .query(
      `INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, secret_sealed, created_at)
       VALUES (?, 'acme', 'http://127.0.0.1:9/x', '', NULL, 'sealed', 0)`,
    )
    .run(endpointId);
  writer = new NotificationWriter(ctx.deps.db.$client, ctx.deps.security.batcher);
});
afterAll(() => ctx.close());

function aWrite(title: string, id = ulid()): NotificationWrite {
  const notification: NotificationRow = {
    id,
    tenant_id: "acme",
    type: "group.test",
    title,
    body: `body of ${title}`,
    data: JSON.stringify({ title }),
    created_by: "someone",
    created_at: 1_790_000_000_000,
    idempotency_key: null,
    request_hash: null,
  };
  return { notification, recipients: users, deliveries: [{ id: ulid(), endpointId }], payload: `payload of ${title}` };
}

const sqlite = () => ctx.deps.db.$client;
const count = (sql: string, ...args: string[]) =>
  sqlite()
    .query<{ n: number }, string[]>(`SELECT count(*) AS n FROM ${sql}`)
    .get(...args)?.n ?? 0;

test("notifications written in one turn all land, every row of each, whatever the group's size", async () => {
  // 100 = 64 + 32 + 4 notifications, 200 inbox rows = 3 × 64 + 8, 100 deliveries.
  const writes = Array.from({ length: 100 }, (_, i) => aWrite(`many-${i}`));
  await Promise.all(writes.map((write) => writer.write(write)));
  for (const write of writes) {
    const n = write.notification;
    expect(sqlite().query("SELECT * FROM notifications WHERE id = ?").get(n.id)).toEqual(n);
    expect(count("inbox_items WHERE notification_id = ? AND read_at IS NULL", n.id)).toBe(2);
    const delivery = write.deliveries[0];
    expect(
      sqlite()
        .query(
          "SELECT id, tenant_id, endpoint_id, notification_id, event_type, payload, status, attempts, due_at, created_at FROM webhook_deliveries WHERE notification_id = ?",
        )
        .all(n.id),
    ).toEqual([
      {
        id: delivery?.id,
        tenant_id: "acme",
        endpoint_id: endpointId,
        notification_id: n.id,
        event_type: "group.test",
        payload: write.payload,
        status: "pending",
        attempts: 0,
        due_at: n.created_at,
        created_at: n.created_at,
      },
    ]);
  }
});

test("one bad notification in a group fails alone; the rest are written", async () => {
  const writes = Array.from({ length: 10 }, (_, i) => aWrite(`mixed-${i}`));
  const clash = aWrite("clash", writes[2]?.notification.id);
  const results = await Promise.allSettled(
    [...writes.slice(0, 5), clash, ...writes.slice(5)].map((w) => writer.write(w)),
  );
  expect(results.map((r) => r.status)).toEqual([
    ...Array(5).fill("fulfilled"),
    "rejected",
    ...Array(5).fill("fulfilled"),
  ]);
  expect(String((results[5] as PromiseRejectedResult).reason)).toContain("UNIQUE");
  for (const write of writes) {
    expect(count("notifications WHERE id = ? AND title = ?", write.notification.id, write.notification.title)).toBe(1);
    expect(count("inbox_items WHERE notification_id = ?", write.notification.id)).toBe(2);
    expect(count("webhook_deliveries WHERE notification_id = ?", write.notification.id)).toBe(1);
  }
  expect(count("notifications WHERE title = 'clash'")).toBe(0);
  expect(count("webhook_deliveries WHERE payload = 'payload of clash'")).toBe(0);
});

test("a notification written alone that fails is rejected with its own error", async () => {
  const first = aWrite("alone");
  await writer.write(first);
  await expect(writer.write(aWrite("alone again", first.notification.id))).rejects.toThrow(/UNIQUE/);
  expect(count("notifications WHERE title = 'alone again'")).toBe(0);
});
