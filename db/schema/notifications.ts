/** Notifications and their recipients' inboxes. */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { tenants } from "./identity";

/** One row per accepted notification; its inbox and delivery rows are written in the same transaction. */
export const notifications = sqliteTable(
  "notifications",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    type: text("type").notNull(),
    title: text("title").notNull(),
    body: text("body").notNull(),
    data: text("data").notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
    // Scoped to the creator: the same key from two callers names two different requests.
    idempotencyKey: text("idempotency_key"),
    requestHash: text("request_hash"),
  },
  (table) => [
    uniqueIndex("notifications_idempotency")
      .on(table.tenantId, table.createdBy, table.idempotencyKey)
      .where(sql`idempotency_key IS NOT NULL`),
  ],
);

/** A recipient's copy; `notification_id` is a ULID, so the primary key lists an inbox newest first. */
export const inboxItems = sqliteTable(
  "inbox_items",
  {
    userId: text("user_id").notNull(),
    notificationId: text("notification_id")
      .notNull()
      .references(() => notifications.id),
    tenantId: text("tenant_id").notNull(),
    readAt: integer("read_at"),
  },
  (table) => [
    primaryKey({ columns: [table.userId, table.notificationId] }),
    // tenant_id in the key: the unread count and the unread page never read the table itself.
    index("inbox_items_unread").on(table.userId, table.tenantId, table.notificationId).where(sql`read_at IS NULL`),
  ],
);
