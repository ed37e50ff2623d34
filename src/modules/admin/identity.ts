import { and, desc, eq, lt, sql } from "drizzle-orm";
import type { Db } from "../../../db/client";
import { apiKeys, type Role, tenants, users } from "../../../db/schema";
import type { Clock } from "../../lib/clock";
import { conflict, HttpProblem, notFound } from "../../lib/problem";
import { constantTimeEqual, hmacHex, randomBase32, randomToken, ulid } from "../../lib/secrets";
import { isoOrNull } from "../../lib/time";
import { generatePassword, hashPassword } from "../auth/passwords";
import { type AuthQueries, prepareAuthQueries } from "../auth/queries";

export type User = typeof users.$inferSelect;
export type ApiKey = typeof apiKeys.$inferSelect;

export const TENANT_SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const API_KEY_SHAPE = /^wdn_([0-9a-z]{16})_([A-Za-z0-9_-]{43})$/;
type Writer = Pick<Db, "insert" | "update" | "select">;

/** The public view of a user: never the password hash. */
export function publicUser(user: User) {
  return {
    id: user.id,
    tenant_id: user.tenantId,
    email: user.email,
    role: user.role,
    created_at: new Date(user.createdAt).toISOString(),
    disabled_at: isoOrNull(user.disabledAt),
  };
}

export function publicApiKey(key: ApiKey) {
  return {
    id: key.id,
    tenant_id: key.tenantId,
    user_id: key.userId,
    name: key.name,
    role: key.role,
    created_at: new Date(key.createdAt).toISOString(),
    last_used_at: isoOrNull(key.lastUsedAt),
    revoked_at: isoOrNull(key.revokedAt),
  };
}

/** A password (generated when none is given) and its argon2id hash, made before any transaction opens. */
export interface Credentials {
  readonly password: string;
  readonly passwordHash: string;
}

export async function credentialsFor(password?: string): Promise<Credentials> {
  const chosen = password ?? generatePassword();
  return { password: chosen, passwordHash: await hashPassword(chosen) };
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE";
}

/** Tenants, users and API keys. Every query is scoped by tenant. */
export class IdentityService {
  /** Prepared once per connection; AuthService uses the same ones. */
  readonly queries: AuthQueries;
  /** Told when users are created, disabled or enabled here (another process's changes are not seen). */
  private readonly usersChanged: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly apiKeyPepper: Uint8Array,
  ) {
    this.queries = prepareAuthQueries(db);
  }

  /** For caches of who is active: they drop what they hold, so the next read sees the change. */
  onUsersChanged(listener: () => void): void {
    this.usersChanged.push(listener);
  }

  private announceUsersChanged(): void {
    for (const listener of this.usersChanged) listener();
  }

  ensureTenant(tx: Writer, tenantId: string): void {
    if (!TENANT_SLUG.test(tenantId)) {
      throw new HttpProblem(422, "validation", "A tenant is a slug of lowercase letters, digits and '-'.", {
        errors: [{ in: "body", field: "tenant", message: "must match ^[a-z0-9-]+$" }],
      });
    }
    tx.insert(tenants).values({ id: tenantId, createdAt: this.clock.now() }).onConflictDoNothing().run();
  }

  /** Creates a user inside the caller's transaction; the unique index refuses a duplicate email. */
  createUser(tx: Writer, input: { tenantId: string; email: string; role: Role; credentials: Credentials }): User {
    const user: User = {
      id: ulid(this.clock.now()),
      tenantId: input.tenantId,
      email: input.email.trim().toLowerCase(),
      passwordHash: input.credentials.passwordHash,
      role: input.role,
      createdAt: this.clock.now(),
      disabledAt: null,
    };
    try {
      tx.insert(users).values(user).run();
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`A user with email ${user.email} already exists in this tenant.`);
      throw error;
    }
    this.announceUsersChanged();
    return user;
  }

  hasTenant(tenantId: string): boolean {
    return this.db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId)).get() !== undefined;
  }

  findUserByEmail(tenantId: string, email: string): User | undefined {
    return this.queries.userByEmail.get({ tenantId, email: email.trim().toLowerCase() });
  }

  getUser(tenantId: string, userId: string): User {
    const user = this.db
      .select()
      .from(users)
      .where(and(eq(users.tenantId, tenantId), eq(users.id, userId)))
      .get();
    if (!user) throw notFound("No such user in this tenant.");
    return user;
  }

  listUsers(tenantId: string, options: { limit: number; before?: string }): User[] {
    const where = options.before
      ? and(eq(users.tenantId, tenantId), lt(users.id, options.before))
      : eq(users.tenantId, tenantId);
    return this.db.select().from(users).where(where).orderBy(desc(users.id)).limit(options.limit).all();
  }

  setUserDisabled(tx: Writer, tenantId: string, userId: string, disabled: boolean): User {
    const user = this.getUser(tenantId, userId);
    const disabledAt = disabled ? (user.disabledAt ?? this.clock.now()) : null;
    tx.update(users).set({ disabledAt }).where(eq(users.id, user.id)).run();
    this.announceUsersChanged();
    return { ...user, disabledAt };
  }

  /** A new key, returned in full once; only its keyed hash is stored. */
  createApiKey(
    tx: Writer,
    input: { tenantId: string; userId: string; name: string; role: Role },
  ): { key: ApiKey; secret: string } {
    const id = randomBase32(16);
    const secret = randomToken(32);
    const key: ApiKey = {
      id,
      tenantId: input.tenantId,
      userId: input.userId,
      name: input.name,
      role: input.role,
      secretHash: this.hashSecret(id, secret),
      createdAt: this.clock.now(),
      lastUsedAt: null,
      revokedAt: null,
    };
    tx.insert(apiKeys).values(key).run();
    return { key, secret: `wdn_${id}_${secret}` };
  }

  /** The live key a presented `wdn_…` string names, or undefined; compared in constant time. */
  verifyApiKey(presented: string): ApiKey | undefined {
    const match = API_KEY_SHAPE.exec(presented);
    if (!match) return undefined;
    const [, id = "", secret = ""] = match;
    const key = this.queries.liveApiKey.get({ id });
    const expected = key?.secretHash ?? "0".repeat(64);
    const valid = constantTimeEqual(this.hashSecret(id, secret), expected);
    return key && valid ? key : undefined;
  }

  /** Newest first, after the key `after` (a key id this list handed out: undefined if it names none of the tenant's). */
  listApiKeys(tenantId: string, options: { limit: number; after?: string; userId?: string }): ApiKey[] | undefined {
    const filters = [eq(apiKeys.tenantId, tenantId)];
    if (options.userId !== undefined) filters.push(eq(apiKeys.userId, options.userId));
    if (options.after !== undefined) {
      const last = this.db
        .select({ createdAt: apiKeys.createdAt, id: apiKeys.id })
        .from(apiKeys)
        .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, options.after)))
        .get();
      if (!last) return undefined;
      // Keys made in one millisecond are told apart by id.
      filters.push(sql`(${apiKeys.createdAt}, ${apiKeys.id}) < (${last.createdAt}, ${last.id})`);
    }
    return this.db
      .select()
      .from(apiKeys)
      .where(and(...filters))
      .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
      .limit(options.limit)
      .all();
  }

  revokeApiKey(tx: Writer, tenantId: string, id: string): ApiKey {
    const key = tx
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, id)))
      .get();
    if (!key) throw notFound("No such API key in this tenant.");
    const revokedAt = key.revokedAt ?? this.clock.now();
    tx.update(apiKeys).set({ revokedAt }).where(eq(apiKeys.id, id)).run();
    return { ...key, revokedAt };
  }

  private hashSecret(id: string, secret: string): string {
    return hmacHex(this.apiKeyPepper, `${id}.${secret}`);
  }
}
