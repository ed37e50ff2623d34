import type { Statement } from "bun:sqlite";
import { gt } from "drizzle-orm";
import type { Db } from "../../../db/client";
import { revocationCutoffs, revokedTokens } from "../../../db/schema";
import type { Clock } from "../../lib/clock";
import type { WriteBatcher } from "../../lib/write-batcher";

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

/** How long the log keeps a revocation for processes to poll: far longer than any poll's gap. */
const LOG_KEEP_MS = 10 * 60_000;
/** Log entries one poll applies at most (~5 ms): a bulk revocation of many sessions is caught up over a few polls. */
const POLL_BATCH = 5000;

/**
 * SQLite is the record; memory is the check. Revoked jtis and "revoked before" cut-offs load
 * into maps at boot; a revocation commits to SQLite first, then updates the maps, so the very
 * next request sees it. A check is at most four map lookups and never touches disk. Each
 * revocation also goes to `revocation_log`, which other processes on the database poll
 * (`poll`), Redis or not: the Redis channel only makes it faster.
 */
export class RevocationService {
  /** `tenant/jti` → expiry: a revocation only ever matches a token of the tenant that revoked it. */
  private tokens = new Map<string, number>();
  private sessions = new Map<string, number>();
  /** Cut-offs in whole seconds, see `cutoffSeconds`: a token with `iat` below it is revoked. */
  private users = new Map<string, number>();
  private tenants = new Map<string, number>();
  private publisher: ((revocation: Revocation) => void) | undefined;

  private readonly insertToken: Statement;
  private readonly upsertCutoff: Statement;
  private readonly appendLog: Statement;
  private readonly logSince: Statement<{ id: number; body: string }, [number]>;
  private readonly logEnd: Statement<{ id: number | null }, []>;
  /** The last log id applied here. */
  private logApplied = 0;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    /** Longest access-token lifetime plus clock skew: after that, a revocation has nothing left to stop. */
    readonly coverMs: number,
    private readonly batcher?: WriteBatcher,
  ) {
    this.insertToken = db.$client.query(
      "INSERT INTO revoked_tokens (tenant_id, jti, revoked_at, expires_at, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    this.upsertCutoff = db.$client.query(
      `INSERT INTO revocation_cutoffs (scope, subject, tenant_id, cutoff_at, expires_at, reason) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (scope, subject) DO UPDATE SET cutoff_at = excluded.cutoff_at, expires_at = excluded.expires_at, reason = excluded.reason`,
    );
    this.appendLog = db.$client.query("INSERT INTO revocation_log (body, at) VALUES (?, ?)");
    this.logSince = db.$client.query(
      `SELECT id, body FROM revocation_log WHERE id > ? ORDER BY id LIMIT ${POLL_BATCH}`,
    );
    this.logEnd = db.$client.query("SELECT max(id) AS id FROM revocation_log");
  }

  /** (Re)builds the maps from SQLite: at boot, and after missing published events. */
  load(): void {
    // Read first: whatever commits while the maps load is applied again by the next poll.
    this.logApplied = this.logEnd.get()?.id ?? 0;
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

  /**
   * Writes the revocation inside the caller's transaction (it shares the connection); call
   * `apply` once it has committed. Prepared once: revocations sit on admin and logout paths.
   */
  record(_tx: unknown, revocation: Revocation): void {
    this.appendLog.run(JSON.stringify(revocation), revocation.at);
    if (revocation.kind === "token") {
      this.insertToken.run(revocation.tenantId, revocation.jti, revocation.at, revocation.expiresAt, revocation.reason);
      return;
    }
    this.upsertCutoff.run(
      revocation.scope,
      revocation.subject,
      revocation.tenantId,
      revocation.at,
      revocation.expiresAt,
      revocation.reason,
    );
  }

  /**
   * Records the revocations (and whatever else `alongside` writes) in one transaction, then makes
   * them effective here and tells other nodes. A 2xx after this means the next request sees it.
   */
  commit(revocations: readonly Revocation[], alongside?: (tx: Db) => void): void {
    // bun:sqlite's own transaction (lighter than drizzle's); statements on the same connection,
    // drizzle's included, join it.
    this.afterCommit(
      this.db.$client.transaction(() => this.write(revocations, withNothingFound(alongside))).immediate(),
    );
  }

  /**
   * The same, through the group-commit batcher: request handlers await it, so concurrent
   * revocations share one COMMIT, and the maps change only once it is on disk.
   */
  async commitBatched(revocations: readonly Revocation[], alongside?: (tx: Db) => void): Promise<void> {
    return this.commitFound(revocations, withNothingFound(alongside));
  }

  /**
   * `commitBatched` whose transaction also finds revocations only it can know (the sessions live
   * at that moment, which a login racing it may just have opened): `find` writes what it writes
   * and returns them, and they are made effective with the rest.
   */
  async commitFound(revocations: readonly Revocation[], find: (tx: Db) => readonly Revocation[]): Promise<void> {
    if (!this.batcher) {
      this.afterCommit(this.db.$client.transaction(() => this.write(revocations, find)).immediate());
      return;
    }
    this.afterCommit(await this.batcher.run(() => this.write(revocations, find)));
  }

  private write(revocations: readonly Revocation[], find: (tx: Db) => readonly Revocation[]): readonly Revocation[] {
    for (const revocation of revocations) this.record(this.db, revocation);
    const found = find(this.db);
    if (found.length === 0) return revocations;
    for (const revocation of found) this.record(this.db, revocation);
    return [...revocations, ...found];
  }

  private afterCommit(revocations: readonly Revocation[]): void {
    for (const revocation of revocations) {
      this.apply(revocation);
      this.publisher?.(revocation);
    }
  }

  /**
   * Applies what other processes on this database committed since the last poll (this one's own
   * come back too, and change nothing). Cheap when nothing is new: one lookup past the last id.
   */
  poll(): number {
    const rows = this.logSince.all(this.logApplied);
    for (const row of rows) {
      this.apply(JSON.parse(row.body) as Revocation);
      this.logApplied = row.id;
    }
    return rows.length;
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
    sqlite.run("DELETE FROM revocation_log WHERE at <= ?", [now - LOG_KEEP_MS]);
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

  /** What is held, by kind: `revocation_cache_entries`. */
  sizes(): { token: number; session: number; user: number; tenant: number } {
    return { token: this.tokens.size, session: this.sessions.size, user: this.users.size, tenant: this.tenants.size };
  }
}

/** Tokens with `iat` below this (every second up to and including the cut-off's) are revoked. */
function cutoffSeconds(atMs: number): number {
  return Math.floor(atMs / 1000) + 1;
}

function withNothingFound(alongside: ((tx: Db) => void) | undefined): (tx: Db) => readonly Revocation[] {
  return (tx) => {
    alongside?.(tx);
    return [];
  };
}
