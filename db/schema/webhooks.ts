/** Webhook endpoints, the delivery outbox and its attempts. */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { tenants } from "./identity";

/** A receiver of signed webhooks; secrets are sealed with the server's sealing key. */
export const webhookEndpoints = sqliteTable(
  "webhook_endpoints",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    url: text("url").notNull(),
    description: text("description").notNull(),
    // JSON array of event types (exact, or a prefix ending in `.*`); NULL = every type.
    eventTypes: text("event_types"),
    secretSealed: text("secret_sealed").notNull(),
    // After a rotation the previous secret keeps signing alongside until this time.
    previousSecretSealed: text("previous_secret_sealed"),
    previousSecretExpiresAt: integer("previous_secret_expires_at"),
    createdAt: integer("created_at").notNull(),
    disabledAt: integer("disabled_at"),
    disabledReason: text("disabled_reason"),
    deletedAt: integer("deleted_at"),
  },
  (table) => [index("webhook_endpoints_tenant").on(table.tenantId)],
);

export const DELIVERY_STATUSES = ["pending", "leased", "failed", "delivered", "dead"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/**
 * The outbox. `id` is the `webhook-id` receivers deduplicate on; `payload` holds the exact body
 * bytes, so every attempt and replay sends the same bytes. `due_at` is when the dispatcher may
 * take it next: for a leased row it is the lease's expiry, so a crashed dispatcher's work simply
 * falls due again.
 */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    endpointId: text("endpoint_id")
      .notNull()
      .references(() => webhookEndpoints.id),
    notificationId: text("notification_id").notNull(),
    eventType: text("event_type").notNull(),
    payload: text("payload").notNull(),
    status: text("status", { enum: DELIVERY_STATUSES }).notNull(),
    attempts: integer("attempts").notNull(),
    dueAt: integer("due_at").notNull(),
    createdAt: integer("created_at").notNull(),
    lastAttemptAt: integer("last_attempt_at"),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    deliveredAt: integer("delivered_at"),
    // When an operator last sent it again (a replay, or a retry of a dead one): from then on its
    // age is the operator's doing, not delivery delay, and the latency SLO leaves it out.
    resentAt: integer("resent_at"),
  },
  (table) => [
    // The waiting statuses, written as the two that are not: SQLite evaluates an IN list of three or
    // more on every insert and update through a temporary B-tree (~4 µs a notification).
    // Tenant and endpoint in the key: the dispatcher skips those whose share of the slots is taken
    // without reading their rows (src/modules/webhooks/dispatcher.ts).
    index("webhook_deliveries_due")
      .on(table.dueAt, table.tenantId, table.endpointId)
      .where(sql`status NOT IN ('delivered', 'dead')`),
    // The only other index, as every notification pays for each: status first for the queue-depth
    // gauge; the operations list, stats, replay and park read one (status, tenant) range per status.
    index("webhook_deliveries_status").on(table.status, table.tenantId, table.id),
  ],
);

/** Every attempt, kept for operators: HTTP status (or none), duration and error. */
export const webhookAttempts = sqliteTable(
  "webhook_attempts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    deliveryId: text("delivery_id").notNull(),
    tenantId: text("tenant_id").notNull(),
    attemptedAt: integer("attempted_at").notNull(),
    durationMs: integer("duration_ms").notNull(),
    statusCode: integer("status_code"),
    outcome: text("outcome", { enum: ["delivered", "retry", "dead", "disabled"] }).notNull(),
    error: text("error"),
  },
  (table) => [
    index("webhook_attempts_delivery").on(table.deliveryId, table.id),
    index("webhook_attempts_tenant_time").on(table.tenantId, table.attemptedAt),
  ],
);
