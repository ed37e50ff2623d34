/** Tenants, users, API keys, sessions, refresh tokens and the JWT key ring. */
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** Every role, most privileged first: users, API keys and sessions each hold one. */
export const ROLES = ["admin", "developer", "viewer"] as const;
export type Role = (typeof ROLES)[number];

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
    role: text("role", { enum: ROLES }).notNull(),
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
    role: text("role", { enum: ROLES }).notNull(),
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
    role: text("role", { enum: ROLES }).notNull(),
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
