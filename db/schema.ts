import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

// Times are integer milliseconds since the epoch unless a column says otherwise.

/** One row, rewritten by /ready to prove the database file accepts writes. */
export const healthProbe = sqliteTable("health_probe", {
  id: integer("id").primaryKey(),
  checkedAt: integer("checked_at").notNull(),
});

/** A tenant's id is its slug (`acme`): the `tenant` of the password grant, the `tid` claim, `X-Client-ID`. */
export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  createdAt: integer("created_at").notNull(),
});

export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    email: text("email").notNull(),
    passwordHash: text("password_hash").notNull(),
    role: text("role", { enum: ["admin", "developer", "viewer"] }).notNull(),
    createdAt: integer("created_at").notNull(),
    disabledAt: integer("disabled_at"),
  },
  (table) => [uniqueIndex("users_tenant_email").on(table.tenantId, table.email)],
);

/** `wdn_<id>_<secret>`: only a keyed hash of the secret is kept. */
export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    name: text("name").notNull(),
    role: text("role", { enum: ["admin", "developer", "viewer"] }).notNull(),
    secretHash: text("secret_hash").notNull(),
    createdAt: integer("created_at").notNull(),
    lastUsedAt: integer("last_used_at"),
    revokedAt: integer("revoked_at"),
  },
  (table) => [index("api_keys_tenant").on(table.tenantId)],
);

/** A login (or key exchange): the unit logout and refresh-reuse detection revoke. */
export const sessions = sqliteTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    apiKeyId: text("api_key_id").references(() => apiKeys.id),
    role: text("role", { enum: ["admin", "developer", "viewer"] }).notNull(),
    grant: text("grant", { enum: ["password", "client_credentials"] }).notNull(),
    ip: text("ip"),
    userAgent: text("user_agent"),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    revokedAt: integer("revoked_at"),
  },
  (table) => [index("sessions_user").on(table.tenantId, table.userId), index("sessions_api_key").on(table.apiKeyId)],
);

/** Opaque refresh tokens, stored as SHA-256; each is used once, then replaced. */
export const refreshTokens = sqliteTable(
  "refresh_tokens",
  {
    hash: text("hash").primaryKey(),
    sessionId: text("session_id")
      .notNull()
      .references(() => sessions.id),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    usedAt: integer("used_at"),
  },
  (table) => [index("refresh_tokens_session").on(table.sessionId)],
);

/** The JWT key ring. Private keys are stored encrypted (AES-256-GCM under a key derived from the master key). */
export const signingKeys = sqliteTable("signing_keys", {
  kid: text("kid").primaryKey(),
  alg: text("alg").notNull(),
  status: text("status", { enum: ["next", "current", "previous", "retired"] }).notNull(),
  publicJwk: text("public_jwk").notNull(),
  privateJwkSealed: text("private_jwk_sealed").notNull(),
  createdAt: integer("created_at").notNull(),
  activatedAt: integer("activated_at"),
  /** A previous key keeps verifying until the longest token it signed has expired. */
  verifyUntil: integer("verify_until"),
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

export type Role = (typeof users.$inferSelect)["role"];
export const ROLES: readonly Role[] = ["admin", "developer", "viewer"];

/**
 * The tamper-evident audit trail: append-only (triggers refuse UPDATE and DELETE), each row's
 * `hash` = HMAC-SHA256(audit key, prev_hash ‖ canonical event).
 */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
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
  // rows in order and stops; ts narrows a time range to a seq range first.
  (table) => [
    index("audit_events_tenant_seq").on(table.tenantId, table.seq),
    index("audit_events_tenant_action").on(table.tenantId, table.action, table.seq),
    index("audit_events_tenant_actor").on(table.tenantId, table.actorId, table.seq),
    index("audit_events_tenant_target").on(table.tenantId, table.targetId, table.seq),
    index("audit_events_tenant_ts").on(table.tenantId, table.ts),
  ],
);

/** Where verification starts after retention archived older events: the last archived link. */
export const auditCheckpoints = sqliteTable("audit_checkpoints", {
  seq: integer("seq").primaryKey(),
  hash: text("hash").notNull(),
  archivedAt: integer("archived_at").notNull(),
  archiveFile: text("archive_file").notNull(),
  events: integer("events").notNull(),
});

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
