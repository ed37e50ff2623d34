import { gt } from "drizzle-orm";
import type { Db } from "../../../db/client";
import { revocationCutoffs, revokedTokens } from "../../../db/schema";
import type { Clock } from "../../lib/clock";

/** What a revocation check needs from a verified access token. */
export interface RevocableClaims {
  readonly jti: string;
  readonly sid: string;
  readonly sub: string;
  readonly tid: string;
  /** Seconds. */
  readonly iat: number;
}

export type CutoffScope = "session" | "user" | "tenant";

/** One revocation, as written to SQLite, applied to the maps and published to other nodes. */
export type Revocation =
  | { kind: "token"; jti: string; tenantId: string; at: number; expiresAt: number; reason: string }
  | {
      kind: "cutoff";
      scope: CutoffScope;
      subject: string;
      tenantId: string;
      at: number;
      expiresAt: number;
      reason: string;
    };

/** Anything shaped like the db or a transaction of it. */
type Writer = Pick<Db, "insert">;

/**
 * SQLite is the record; memory is the check. Revoked jtis and "revoked before" cut-offs load
 * into maps at boot; a revocation commits to SQLite first, then updates the maps, so the very
 * next request sees it. A check is at most four map lookups and never touches disk.
 */
export class RevocationService {
  /** `tenant/jti` → expiry: a revocation only ever matches a token of the tenant that revoked it. */
  private tokens = new Map<string, number>();
  private sessions = new Map<string, number>();
  /** Cut-offs in whole seconds, see `cutoffSeconds`: a token with `iat` below it is revoked. */
  private users = new Map<string, number>();
  private tenants = new Map<string, number>();
  private publisher: ((revocation: Revocation) => void) | undefined;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    /** Longest access-token lifetime plus clock skew: after that, a revocation has nothing left to stop. */
    readonly coverMs: number,
  ) {}

  /** (Re)builds the maps from SQLite: at boot, and after missing published events. */
  load(): void {
    const now = this.clock.now();
    const tokens = new Map<string, number>();
    for (const row of this.db.select().from(revokedTokens).where(gt(revokedTokens.expiresAt, now)).all()) {
      tokens.set(`${row.tenantId}/${row.jti}`, row.expiresAt);
    }
    const maps = {
      session: new Map<string, number>(),
      user: new Map<string, number>(),
      tenant: new Map<string, number>(),
    };
    for (const row of this.db.select().from(revocationCutoffs).where(gt(revocationCutoffs.expiresAt, now)).all()) {
      maps[row.scope].set(row.subject, row.scope === "session" ? row.expiresAt : cutoffSeconds(row.cutoffAt));
    }
    this.tokens = tokens;
    this.sessions = maps.session;
    this.users = maps.user;
    this.tenants = maps.tenant;
  }

  isRevoked(claims: RevocableClaims): boolean {
    if (this.tokens.has(`${claims.tid}/${claims.jti}`) || this.sessions.has(claims.sid)) return true;
    const user = this.users.get(claims.sub);
    if (user !== undefined && claims.iat < user) return true;
    const tenant = this.tenants.get(claims.tid);
    return tenant !== undefined && claims.iat < tenant;
  }

  /**
   * The smallest `iat` (seconds) a token issued now may carry: a cut-off made earlier in this
   * same second must not revoke a token issued after it.
   */
  minimumIssuedAt(userId: string, tenantId: string): number {
    return Math.max(Math.floor(this.clock.now() / 1000), this.users.get(userId) ?? 0, this.tenants.get(tenantId) ?? 0);
  }

  token(jti: string, tenantId: string, expiresAt: number, reason: string): Revocation {
    return { kind: "token", jti, tenantId, at: this.clock.now(), expiresAt, reason };
  }

  cutoff(scope: CutoffScope, subject: string, tenantId: string, reason: string): Revocation {
    const at = this.clock.now();
    return { kind: "cutoff", scope, subject, tenantId, at, expiresAt: at + this.coverMs, reason };
  }

  /** Writes the revocation inside the caller's transaction; call `apply` once it has committed. */
  record(tx: Writer, revocation: Revocation): void {
    if (revocation.kind === "token") {
      tx.insert(revokedTokens)
        .values({
          jti: revocation.jti,
          tenantId: revocation.tenantId,
          revokedAt: revocation.at,
          expiresAt: revocation.expiresAt,
          reason: revocation.reason,
        })
        .onConflictDoNothing()
        .run();
      return;
    }
    const row = {
      scope: revocation.scope,
      subject: revocation.subject,
      tenantId: revocation.tenantId,
      cutoffAt: revocation.at,
      expiresAt: revocation.expiresAt,
      reason: revocation.reason,
    };
    tx.insert(revocationCutoffs)
      .values(row)
      .onConflictDoUpdate({
        target: [revocationCutoffs.scope, revocationCutoffs.subject],
        set: { cutoffAt: row.cutoffAt, expiresAt: row.expiresAt, reason: row.reason },
      })
      .run();
  }

  /**
   * Records the revocations (and whatever else `alongside` writes) in one transaction, then makes
   * them effective here and tells other nodes. A 2xx after this means the next request sees it.
   */
  commit(revocations: readonly Revocation[], alongside?: (tx: Db) => void): void {
    this.db.transaction(
      (tx) => {
        for (const revocation of revocations) this.record(tx as unknown as Db, revocation);
        alongside?.(tx as unknown as Db);
      },
      { behavior: "immediate" },
    );
    for (const revocation of revocations) {
      this.apply(revocation);
      this.publisher?.(revocation);
    }
  }

  /** Where committed revocations are announced (the Redis channel, when configured). */
  onCommit(publisher: (revocation: Revocation) => void): void {
    this.publisher = publisher;
  }

  /** Makes a committed revocation effective in this process. */
  apply(revocation: Revocation): void {
    if (revocation.expiresAt <= this.clock.now()) return;
    if (revocation.kind === "token") {
      this.tokens.set(`${revocation.tenantId}/${revocation.jti}`, revocation.expiresAt);
      return;
    }
    if (revocation.scope === "session") {
      this.sessions.set(revocation.subject, revocation.expiresAt);
      return;
    }
    const map = revocation.scope === "user" ? this.users : this.tenants;
    map.set(revocation.subject, Math.max(map.get(revocation.subject) ?? 0, cutoffSeconds(revocation.at)));
  }

  /**
   * Deletes rows, and forgets entries, that can no longer revoke anything. Walks the maps rather
   * than reloading them: a reload of 100 000 rows blocks the event loop for ~150 ms.
   */
  purgeExpired(): number {
    const now = this.clock.now();
    const sqlite = this.db.$client;
    const purged =
      sqlite.run("DELETE FROM revoked_tokens WHERE expires_at <= ?", [now]).changes +
      sqlite.run("DELETE FROM revocation_cutoffs WHERE expires_at <= ?", [now]).changes;
    for (const map of [this.tokens, this.sessions]) {
      for (const [key, expiresAt] of map) if (expiresAt <= now) map.delete(key);
    }
    for (const map of [this.users, this.tenants]) {
      for (const [key, cutoff] of map) if (cutoff * 1000 + this.coverMs <= now) map.delete(key);
    }
    return purged;
  }

  get size(): number {
    return this.tokens.size + this.sessions.size + this.users.size + this.tenants.size;
  }
}

/** Tokens with `iat` below this (every second up to and including the cut-off's) are revoked. */
function cutoffSeconds(atMs: number): number {
  return Math.floor(atMs / 1000) + 1;
}
