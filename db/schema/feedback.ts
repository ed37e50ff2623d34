/** Feedback kept in SQLite (without Redis), its counts, and the spool for Redis. */
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Feedback when no Redis is configured (DESIGN §8): read with `expires_at > now`, swept when
 * expired. Listed newest first per subject.
 */
export const feedbackEntries = sqliteTable(
  "feedback_entries",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    subjectType: text("subject_type").notNull(),
    subjectId: text("subject_id").notNull(),
    verdict: text("verdict").notNull(),
    /** The whole accepted entry as JSON: what the API returns. */
    body: text("body").notNull(),
    expiresAt: integer("expires_at").notNull(),
  },
  (table) => [
    index("feedback_entries_subject").on(table.tenantId, table.subjectId, table.id),
    index("feedback_entries_expiry").on(table.expiresAt),
  ],
);

/**
 * How many entries each subject holds in `feedback_entries`, expired ones included until the
 * sweep deletes them: FEEDBACK_MAX_PER_SUBJECT is checked here in one row, not by counting the
 * subject's entries on every write (~2 ms at 10 000).
 */
export const feedbackSubjectCounts = sqliteTable(
  "feedback_subject_counts",
  {
    tenantId: text("tenant_id").notNull(),
    subjectType: text("subject_type").notNull(),
    subjectId: text("subject_id").notNull(),
    held: integer("held").notNull(),
    // By verdict, and the latest expiry: the summary pages subjects and sums a tenant's verdicts
    // from here, not by grouping every live entry (~2 µs each, on every page).
    useful: integer("useful").notNull().default(0),
    notUseful: integer("not_useful").notNull().default(0),
    falsePositive: integer("false_positive").notNull().default(0),
    truePositive: integer("true_positive").notNull().default(0),
    lastExpiry: integer("last_expiry").notNull().default(0),
  },
  (table) => [
    primaryKey({ columns: [table.tenantId, table.subjectType, table.subjectId] }),
    index("feedback_subject_counts_latest").on(table.tenantId, table.lastExpiry, table.subjectType, table.subjectId),
  ],
);

/** A tenant's feedback by verdict, kept with the subjects' counts: the summary's totals in one row. */
export const feedbackTenantCounts = sqliteTable("feedback_tenant_counts", {
  tenantId: text("tenant_id").primaryKey(),
  useful: integer("useful").notNull().default(0),
  notUseful: integer("not_useful").notNull().default(0),
  falsePositive: integer("false_positive").notNull().default(0),
  truePositive: integer("true_positive").notNull().default(0),
});

/**
 * Feedback accepted while the configured Redis was down, replayed into Redis in `seq` order with
 * its original expiry when Redis returns (expired rows are dropped, not replayed).
 */
export const feedbackSpool = sqliteTable("feedback_spool", {
  seq: integer("seq").primaryKey({ autoIncrement: true }),
  tenantId: text("tenant_id").notNull(),
  id: text("id").notNull(),
  body: text("body").notNull(),
  expiresAt: integer("expires_at").notNull(),
});
