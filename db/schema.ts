import { sql } from "drizzle-orm";
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
  (table) => [
    // id last: a user's sessions newest first, without sorting every session they ever had.
    index("sessions_user").on(table.tenantId, table.userId, table.id),
    index("sessions_api_key").on(table.apiKeyId),
    // The minute's sweep finds sessions no token can be alive for by this.
    index("sessions_expiry").on(table.expiresAt),
  ],
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
    /**
     * Set (with used_at) when a retry within REFRESH_TOKEN_REUSE_GRACE_SECONDS replaced this token
     * before it was presented: such a token gets no grace of its own, so presenting it is reuse.
     */
    supersededAt: integer("superseded_at"),
  },
  (table) => [index("refresh_tokens_session").on(table.sessionId)],
);

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
