/** The tamper-evident audit trail, its head and its archive checkpoints. */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The tamper-evident audit trail: append-only (triggers refuse UPDATE and DELETE), each row's
 * `hash` = HMAC-SHA256(audit key, prev_hash ‖ canonical event).
 */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    // Not AUTOINCREMENT: the trail assigns seq itself, and AUTOINCREMENT's sqlite_sequence update
    // was ~6 µs of every append.
    seq: integer("seq").primaryKey(),
    id: text("id").notNull(),
    ts: integer("ts").notNull(),
    tenantId: text("tenant_id"),
    actorType: text("actor_type").notNull(),
    actorId: text("actor_id"),
    action: text("action").notNull(),
    targetType: text("target_type"),
    targetId: text("target_id"),
    outcome: text("outcome", { enum: ["success", "failure", "denied"] }).notNull(),
    reason: text("reason"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    requestId: text("request_id"),
    paramsHash: text("params_hash").notNull(),
    params: text("params").notNull(),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
  },
  // Each filter of GET /v1/audit has an index ending in seq, so "newest first, LIMIT n" reads
  // rows in order and stops. A time range needs no index: ts never decreases along seq (the
  // trail makes it so), so it becomes a seq range by binary search on the primary key.
  (table) => [
    index("audit_events_tenant_seq").on(table.tenantId, table.seq),
    index("audit_events_tenant_action").on(table.tenantId, table.action, table.seq),
    index("audit_events_tenant_actor").on(table.tenantId, table.actorId, table.seq),
    index("audit_events_tenant_target").on(table.tenantId, table.targetId, table.seq),
  ],
);

/**
 * Where verification starts after retention archived older events: the last archived link.
 * `mac` is HMAC-SHA256(audit key, "checkpoint" ‖ seq ‖ hash ‖ archive file ‖ events), so no
 * checkpoint can be made up to cover removed events; null only on a checkpoint written before
 * it existed, until `warden audit sign-checkpoints` signs it (once its archive bears it out).
 */
export const auditCheckpoints = sqliteTable("audit_checkpoints", {
  seq: integer("seq").primaryKey(),
  hash: text("hash").notNull(),
  archivedAt: integer("archived_at").notNull(),
  archiveFile: text("archive_file").notNull(),
  events: integer("events").notNull(),
  mac: text("mac"),
});

/**
 * The newest link of the audit chain, rewritten with every event: removing the newest events
 * leaves no broken link behind them, only a head that points past the last row. `mac` is
 * HMAC-SHA256(audit key, "head" ‖ seq ‖ hash), so the head cannot be moved back by hand.
 */
export const auditHead = sqliteTable("audit_head", {
  id: integer("id").primaryKey(),
  seq: integer("seq").notNull(),
  hash: text("hash").notNull(),
  /** The newest event's ts: appends keep ts from decreasing along seq. */
  ts: integer("ts").notNull(),
  mac: text("mac").notNull(),
});
