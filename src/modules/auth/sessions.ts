import { and, desc, eq, gt, isNull, lt } from "drizzle-orm";
import type { Db } from "../../../db/client";
import { sessions } from "../../../db/schema";
import type { Clock } from "../../lib/clock";
import { notFound } from "../../lib/problem";
import { sha256Hex } from "../../lib/secrets";
import type { RequestMeta } from "../../plugins/request-context";
import { AuditAction } from "../audit/actions";
import { type AuditHook, actorOf, requestEvent, type SecurityEvent } from "../audit/hook";
import type { RevocationService } from "../revocation/service";
import { type AccessClaims, type AccessTokens, CLOCK_SKEW_SECONDS } from "./access-tokens";
import type { AuthQueries } from "./queries";

export type Session = typeof sessions.$inferSelect;

export const REFRESH_PREFIX = "wrt_";

/** Sessions one purge statement removes at most: each batch is a short write, not one long lock. */
const PURGE_BATCH = 1000;
/** Batches one sweep runs at most: a first sweep over years of sessions takes a few minutes, not one long stall. */
const PURGE_BATCHES = 20;

export interface SessionServiceDeps {
  db: Db;
  clock: Clock;
  queries: AuthQueries;
  tokens: AccessTokens;
  revocation: RevocationService;
  audit: AuditHook;
}

/** Ending sessions: logout, RFC 7009 revocation, a user's own sessions, and the commit they share. */
export class SessionService {
  private readonly queries: AuthQueries;

  constructor(private readonly deps: SessionServiceDeps) {
    this.queries = deps.queries;
  }

  /**
   * Deletes sessions, and their refresh tokens, that no token can be alive for any more: expired
   * longer ago than an access token lives. Otherwise every login and client-credentials exchange
   * would stay forever (a CI key exchanging every 5 minutes: ~100 000 a year). One batch a turn,
   * so other requests go on in between. Returns how many.
   */
  async purgeExpired(): Promise<number> {
    const before = this.deps.clock.now() - this.deps.revocation.coverMs;
    const sqlite = this.deps.db.$client;
    const batch = sqlite.prepare(`SELECT id FROM sessions WHERE expires_at <= ? LIMIT ${PURGE_BATCH}`);
    const dropTokens = sqlite.prepare(
      "DELETE FROM refresh_tokens WHERE session_id IN (SELECT value FROM json_each(?))",
    );
    const dropSessions = sqlite.prepare("DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?))");
    let purged = 0;
    for (let run = 0; run < PURGE_BATCHES; run++) {
      const removed = sqlite
        .transaction(() => {
          const ids = JSON.stringify((batch.all(before) as { id: string }[]).map((row) => row.id));
          dropTokens.run(ids);
          return dropSessions.run(ids).changes;
        })
        .immediate();
      purged += removed;
      if (removed < PURGE_BATCH) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return purged;
  }

  /** Revokes the caller's session: its access tokens now, its refresh token for good. */
  logout(principal: AccessClaims, meta: RequestMeta): Promise<void> {
    return this.endOwnSession(principal, principal.sid, AuditAction.logout, "logout", meta);
  }

  /**
   * RFC 7009: revokes an access or refresh token we issued; unknown or malformed tokens are
   * ignored (the caller still gets 200). A refresh token takes its whole session with it.
   */
  async revokeToken(token: string, meta: RequestMeta): Promise<void> {
    if (token.startsWith(REFRESH_PREFIX)) {
      const row = this.queries.refreshByHash.get({ hash: sha256Hex(token) });
      const session = row ? this.queries.sessionById.get({ id: row.sessionId }) : undefined;
      // Unknown, or ended already: 200 either way (RFC 7009), and nothing new for the trail.
      if (!session || session.revokedAt !== null) return;
      await this.revokeSessions(
        [session.id],
        session.tenantId,
        "refresh token revoked",
        requestEvent(AuditAction.tokenRevoked, "success", meta, {
          tenantId: session.tenantId,
          actor: { type: "anonymous", id: null },
          target: { type: "session", id: session.id },
        }),
      );
      return;
    }
    const claims = await this.deps.tokens.inspect(token);
    // Unknown, or revoked already (by this or any other route): nothing new for the trail.
    if (!claims || this.deps.revocation.isRevoked(claims)) return;
    const { revocation } = this.deps;
    const expiresAt = (claims.exp + CLOCK_SKEW_SECONDS) * 1000;
    // Expired past any skew: no request can use it any more, so nothing is revoked or recorded
    // (the revocation maps forget expired entries, and every presentation would add an event).
    if (expiresAt <= this.deps.clock.now()) return;
    await revocation.commitBatched([revocation.token(claims.jti, claims.tid, expiresAt, "revoked by holder")], (tx) =>
      this.deps.audit.append(
        tx,
        requestEvent(AuditAction.tokenRevoked, "success", meta, {
          tenantId: claims.tid,
          actor: { type: "anonymous", id: null },
          target: { type: "token", id: claims.jti },
        }),
      ),
    );
  }

  /** A user's live sessions (those of one of their API keys, given `apiKeyId`), newest first, ids below `before` when given. */
  liveSessions(
    tenantId: string,
    userId: string,
    page: { limit: number; before?: string; apiKeyId?: string },
  ): Session[] {
    return this.deps.db
      .select()
      .from(sessions)
      .where(
        and(
          eq(sessions.tenantId, tenantId),
          eq(sessions.userId, userId),
          isNull(sessions.revokedAt),
          gt(sessions.expiresAt, this.deps.clock.now()),
          page.apiKeyId === undefined ? undefined : eq(sessions.apiKeyId, page.apiKeyId),
          page.before === undefined ? undefined : lt(sessions.id, page.before),
        ),
      )
      .orderBy(desc(sessions.id))
      .limit(page.limit)
      .all();
  }

  /**
   * Ends one of the caller's own sessions; anyone else's is "not found", never "forbidden". A
   * caller signed in with an API key owns only that key's sessions: a viewer key given to a CI
   * job must not end (or list) its owner's interactive sessions.
   */
  async deleteOwnSession(principal: AccessClaims, sessionId: string, meta: RequestMeta): Promise<void> {
    const session = this.deps.db
      .select()
      .from(sessions)
      .where(
        and(
          eq(sessions.id, sessionId),
          eq(sessions.tenantId, principal.tid),
          eq(sessions.userId, principal.sub),
          principal.client_id === undefined ? undefined : eq(sessions.apiKeyId, principal.client_id),
          isNull(sessions.revokedAt),
        ),
      )
      .get();
    // An ended session is no longer one of the caller's (the list leaves it out too).
    if (!session) throw notFound("No such live session.");
    await this.endOwnSession(principal, session.id, AuditAction.sessionRevoked, "ended by its user", meta);
  }

  private endOwnSession(
    principal: AccessClaims,
    sessionId: string,
    action: SecurityEvent["action"],
    reason: string,
    meta: RequestMeta,
  ): Promise<void> {
    return this.revokeSessions(
      [sessionId],
      principal.tid,
      reason,
      requestEvent(action, "success", meta, {
        tenantId: principal.tid,
        actor: actorOf(principal),
        target: { type: "session", id: sessionId },
      }),
    );
  }

  /** Cut-offs for the sessions' access tokens and `revoked_at` for their refresh tokens, in one commit. */
  revokeSessions(
    sessionIds: readonly string[],
    tenantId: string,
    reason: string,
    audited: SecurityEvent,
  ): Promise<void> {
    const { revocation, clock } = this.deps;
    return revocation.commitBatched(
      sessionIds.map((id) => revocation.cutoff("session", id, tenantId, reason)),
      (tx) => {
        for (const id of sessionIds) this.queries.endSession.run(clock.now(), id);
        this.deps.audit.append(tx, audited);
      },
    );
  }
}
