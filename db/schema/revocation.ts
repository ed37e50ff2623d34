/** Revoked tokens, revocation cut-offs and the log other processes poll. */
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Every revocation as it was committed, in commit order: how processes sharing the database see
 * each other's revocations (each polls for ids past the last it applied), with Redis or without.
 * AUTOINCREMENT so an id is never handed out twice, even after the newest rows are purged.
 */
export const revocationLog = sqliteTable("revocation_log", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  /** JSON of the Revocation (src/modules/revocation/service.ts). */
  body: text("body").notNull(),
  at: integer("at").notNull(),
});

/** Revoked access tokens, kept until the token would have expired anyway. Keyed per tenant, so no tenant can pre-empt another's. */
export const revokedTokens = sqliteTable(
  "revoked_tokens",
  {
    tenantId: text("tenant_id").notNull(),
    jti: text("jti").notNull(),
    revokedAt: integer("revoked_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    reason: text("reason").notNull(),
  },
  (table) => [
    primaryKey({ columns: [table.tenantId, table.jti] }),
    index("revoked_tokens_tenant").on(table.tenantId, table.revokedAt),
  ],
);

/**
 * "Revoked before" cut-offs: every token of a session, or issued to a user or tenant before
 * `cutoff_at`, is revoked. Purged once no token issued before the cut-off can still be valid.
 */
export const revocationCutoffs = sqliteTable(
  "revocation_cutoffs",
  {
    scope: text("scope", { enum: ["session", "user", "tenant"] }).notNull(),
    subject: text("subject").notNull(),
    tenantId: text("tenant_id").notNull(),
    cutoffAt: integer("cutoff_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    reason: text("reason").notNull(),
  },
  (table) => [
    primaryKey({ columns: [table.scope, table.subject] }),
    index("revocation_cutoffs_tenant").on(table.tenantId, table.cutoffAt),
  ],
);
