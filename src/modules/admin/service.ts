import type { Statement } from "bun:sqlite";
import { and, eq, gt, isNull, or, type SQL } from "drizzle-orm";
import type { Db } from "../../../db/client";
import { type Role, sessions, users } from "../../../db/schema";
import type { Clock } from "../../lib/clock";
import { conflict, HttpProblem, invalidField, notFound } from "../../lib/problem";
import type { Principal } from "../../plugins/auth";
import type { RequestMeta } from "../../plugins/request-context";
import { AuditAction } from "../audit/actions";
import { type AuditHook, callerEvent, type SecurityEvent } from "../audit/hook";
import type { SessionService } from "../auth/sessions";
import type { Security } from "../auth/setup";
import type { Revocation, RevocationService } from "../revocation/service";
import { credentialsFor, type IdentityService } from "./identity";

const RANK: Record<Role, number> = { viewer: 0, developer: 1, admin: 2 };

/** Admin writes: users, API keys, and revocation of users, sessions and tokens, all tenant-scoped. */
export class AdminService {
  private readonly identity: IdentityService;
  private readonly revocation: RevocationService;
  private readonly sessionService: SessionService;
  private readonly audit: AuditHook;

  /** Whether a bulk revocation's confirm token was used: the trail remembers it. */
  private readonly confirmUsed: Statement;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    security: Security,
  ) {
    this.identity = security.identity;
    this.revocation = security.revocation;
    this.sessionService = security.sessions;
    this.audit = security.audit;
    this.confirmUsed = db.$client.query(
      "SELECT 1 FROM audit_events WHERE tenant_id = ? AND action = ? AND json_extract(params, '$.confirm_id') = ? LIMIT 1",
    );
  }

  async createUser(admin: Principal, input: { email: string; role: Role; password?: string }, meta: RequestMeta) {
    const credentials = await credentialsFor(input.password);
    const user = this.db.transaction(
      (tx) => {
        const created = this.identity.createUser(tx, {
          tenantId: admin.tid,
          email: input.email,
          role: input.role,
          credentials,
        });
        this.audit.append(
          tx,
          this.event(admin, AuditAction.userCreated, { type: "user", id: created.id }, meta, {
            email: created.email,
            role: created.role,
          }),
        );
        return created;
      },
      { behavior: "immediate" },
    );
    return { user, password: input.password === undefined ? credentials.password : undefined };
  }

  /** Disabling a user also revokes every token and session they hold. */
  async setUserDisabled(admin: Principal, userId: string, disabled: boolean, meta: RequestMeta) {
    try {
      return await this.changeUserDisabled(admin, userId, disabled, meta);
    } catch (error) {
      if (error instanceof CallerDisabled) {
        // A denied admin write, as the auth macro audits one: who tried, on whom.
        this.audit.record({
          ...this.event(admin, AuditAction.accessDenied, { type: "user", id: userId }, meta),
          outcome: "denied",
          reason: error.detail,
        });
      }
      throw error;
    }
  }

  private async changeUserDisabled(admin: Principal, userId: string, disabled: boolean, meta: RequestMeta) {
    const user = this.identity.getUser(admin.tid, userId);
    // Locking yourself out is never what was meant; another admin (or the CLI) can do it.
    if (disabled && user.id === admin.sub) throw conflict("You cannot disable your own account.");
    // Already so: nothing changes, and nothing is audited as if it had.
    if ((user.disabledAt !== null) === disabled) return user;
    let updated = user;
    const audited = this.event(
      admin,
      disabled ? AuditAction.userDisabled : AuditAction.userEnabled,
      { type: "user", id: user.id },
      meta,
    );
    // Checked again inside the write: of two requests racing, only the first changes and audits;
    // and of two admins disabling each other at once, the second finds itself disabled.
    if (disabled) {
      await this.revocation.commitFound([], (tx) => {
        this.assertCallerEnabled(admin);
        updated = this.identity.getUser(admin.tid, user.id);
        if (updated.disabledAt !== null) return [];
        updated = this.identity.setUserDisabled(tx, admin.tid, user.id, true);
        this.audit.append(tx, audited);
        return [
          this.revocation.cutoff("user", user.id, admin.tid, "user disabled"),
          ...this.revokeLiveSessions(tx, eq(sessions.userId, user.id), admin.tid, "user disabled"),
        ];
      });
    } else {
      updated = this.db.transaction(
        (tx) => {
          this.assertCallerEnabled(admin);
          const current = this.identity.getUser(admin.tid, user.id);
          if (current.disabledAt === null) return current;
          this.audit.append(tx, audited);
          return this.identity.setUserDisabled(tx, admin.tid, user.id, false);
        },
        { behavior: "immediate" },
      );
    }
    return updated;
  }

  /**
   * The caller was enabled when its token was checked; a disable committed since (another admin's,
   * racing this request) ends its say here, so two admins disabling each other cannot leave the
   * tenant without one.
   */
  private assertCallerEnabled(admin: Principal): void {
    if (this.identity.getUser(admin.tid, admin.sub).disabledAt !== null) throw new CallerDisabled();
  }

  createApiKey(admin: Principal, input: { name: string; role?: Role; userId?: string }, meta: RequestMeta) {
    const owner = this.ownerOf(admin, input.userId);
    // Its exchanges would all fail (invalid_client): say so now rather than hand out a dead key.
    if (owner.disabledAt !== null) {
      throw new HttpProblem(409, "user-disabled", "This user is disabled; enable them before giving them a key.", {
        errors: [{ in: "body", field: "user_id", message: "user is disabled" }],
      });
    }
    const role = input.role ?? owner.role;
    if (RANK[role] > RANK[owner.role]) {
      throw new HttpProblem(422, "validation", `A key cannot hold more than its owner's role (${owner.role}).`, {
        errors: [{ in: "body", field: "role", message: `must not exceed ${owner.role}` }],
      });
    }
    return this.db.transaction(
      (tx) => {
        const created = this.identity.createApiKey(tx, {
          tenantId: admin.tid,
          userId: owner.id,
          name: input.name,
          role,
        });
        this.audit.append(
          tx,
          this.event(admin, AuditAction.apiKeyCreated, { type: "api_key", id: created.key.id }, meta, {
            name: input.name,
            role,
            user_id: owner.id,
          }),
        );
        return created;
      },
      { behavior: "immediate" },
    );
  }

  /** A user a body names by `user_id`: another tenant's, or none, is a 422 naming the field. */
  private userNamedInBody(admin: Principal, userId: string) {
    try {
      return this.identity.getUser(admin.tid, userId);
    } catch (error) {
      if (!(error instanceof HttpProblem) || error.status !== 404) throw error;
      throw invalidField("user_id", "No user of this tenant has this id.");
    }
  }

  /** The user a new key is for: the caller, or the one the body names (a 422 naming `user_id` if none such). */
  private ownerOf(admin: Principal, userId: string | undefined) {
    if (userId === undefined) return this.identity.getUser(admin.tid, admin.sub);
    return this.userNamedInBody(admin, userId);
  }

  /** Revokes the key and every session opened with it. */
  async revokeApiKey(admin: Principal, id: string, meta: RequestMeta) {
    const existing = this.identity.queries.apiKeyById.get({ id });
    if (!existing || existing.tenantId !== admin.tid) throw notFound("No such API key in this tenant.");
    // Deleting twice is still a success, but only the first one is an event.
    if (existing.revokedAt !== null) return existing;
    let key: ReturnType<IdentityService["revokeApiKey"]> | undefined;
    await this.revocation.commitFound([], (tx) => {
      // Revoked by a request that raced this one: its event and cut-offs are already written.
      const current = this.identity.queries.apiKeyById.get({ id });
      if (current && current.revokedAt !== null) {
        key = current;
        return [];
      }
      key = this.identity.revokeApiKey(tx, admin.tid, id);
      this.audit.append(tx, this.event(admin, AuditAction.apiKeyRevoked, { type: "api_key", id }, meta));
      return this.revokeLiveSessions(tx, eq(sessions.apiKeyId, id), admin.tid, "API key revoked");
    });
    return key;
  }

  /**
   * Marks the tenant's live sessions that `which` selects revoked, as of this transaction: one a
   * login opened a moment ago is among them (a login checks its user and key in its own write).
   * Their cut-offs revoke their tokens by session, whatever `iat` those carry.
   */
  private revokeLiveSessions(tx: Db, which: SQL, tenantId: string, reason: string): Revocation[] {
    const now = this.clock.now();
    // An expired session's last access tokens live on for up to their lifetime: those still need
    // a cut-off; one expired longer ago has nothing left to revoke (and there may be thousands).
    const live = tx
      .select({ id: sessions.id })
      .from(sessions)
      .where(
        and(
          eq(sessions.tenantId, tenantId),
          which,
          isNull(sessions.revokedAt),
          gt(sessions.expiresAt, now - this.revocation.coverMs),
        ),
      )
      .all();
    for (const s of live) tx.update(sessions).set({ revokedAt: now }).where(eq(sessions.id, s.id)).run();
    return live.map((s) => this.revocation.cutoff("session", s.id, tenantId, reason));
  }

  async revokeByJti(admin: Principal, jti: string, meta: RequestMeta) {
    const revocation = this.revocation.token(
      jti,
      admin.tid,
      this.clock.now() + this.revocation.coverMs,
      "revoked by an admin",
    );
    await this.revocation.commitBatched([revocation], (tx) =>
      this.audit.append(
        tx,
        this.event(admin, AuditAction.revocationCreated, { type: "token", id: jti }, meta, { jti }),
      ),
    );
    return { kind: "token" as const, id: jti };
  }

  async revokeSession(admin: Principal, sessionId: string, meta: RequestMeta) {
    const session = this.db
      .select()
      .from(sessions)
      .where(and(eq(sessions.tenantId, admin.tid), eq(sessions.id, sessionId)))
      .get();
    // Named in the body, not the path: a 422 naming the field, as any unknown id in a body.
    if (!session) throw invalidField("session_id", "No session of this tenant has this id.");
    // Ended already: its revocation, reason and time stand as they are.
    if (session.revokedAt !== null) return { kind: "session" as const, id: session.id };
    await this.sessionService.revokeSessions(
      [session.id],
      admin.tid,
      "revoked by an admin",
      this.event(admin, AuditAction.revocationCreated, { type: "session", id: session.id }, meta, {
        session_id: session.id,
      }),
    );
    return { kind: "session" as const, id: session.id };
  }

  async revokeUserTokens(admin: Principal, userId: string, meta: RequestMeta) {
    const user = this.userNamedInBody(admin, userId);
    await this.revokeUser(admin.tid, user.id, "revoked by an admin", (tx) =>
      this.audit.append(
        tx,
        this.event(admin, AuditAction.revocationCreated, { type: "user", id: user.id }, meta, {
          user_id: user.id,
        }),
      ),
    );
    return { kind: "user" as const, id: user.id };
  }

  /** What a bulk revocation would reach: users and live sessions. */
  bulkImpact(tenantId: string, scope: "tenant" | "role", role?: Role) {
    const now = this.clock.now();
    const userFilter =
      scope === "role" && role ? and(eq(users.tenantId, tenantId), eq(users.role, role)) : eq(users.tenantId, tenantId);
    const affectedUsers = this.db.select({ id: users.id }).from(users).where(userFilter).all();
    const live = and(eq(sessions.tenantId, tenantId), isNull(sessions.revokedAt), gt(sessions.expiresAt, now));
    // A role's sessions: opened with that role, or belonging to a user who holds it now (refresh
    // issues the user's current role).
    const affectedSessions = this.db
      .select({ id: sessions.id })
      .from(sessions)
      .leftJoin(users, eq(users.id, sessions.userId))
      .where(scope === "role" && role ? and(live, or(eq(sessions.role, role), eq(users.role, role))) : live)
      .all();
    return { users: affectedUsers.map((u) => u.id), sessions: affectedSessions.map((s) => s.id) };
  }

  /**
   * Carries out a confirmed bulk revocation, once: the audit trail remembers each confirm token
   * (by `confirmId`, a hash of it), so a replay within its five minutes is refused.
   */
  async bulkRevoke(
    admin: Principal,
    bulk: { scope: "tenant" | "role"; role: Role | undefined; confirmId: string },
    meta: RequestMeta,
  ) {
    const { scope, role, confirmId } = bulk;
    const reason = scope === "tenant" ? "bulk revocation of the tenant" : `bulk revocation of role ${role}`;
    let counts = { users: 0, sessions: 0 };
    // All inside the write: two confirms racing with one token are ordered there, and the second
    // sees the first's event.
    await this.revocation.commitFound([], (tx) => {
      if (this.confirmUsed.get(admin.tid, AuditAction.bulkRevocationConfirmed, confirmId)) {
        throw conflict("This confirm token has already been used; preview again.");
      }
      const impact = this.bulkImpact(admin.tid, scope, role);
      const revocations =
        scope === "tenant"
          ? [this.revocation.cutoff("tenant", admin.tid, admin.tid, reason)]
          : impact.users.map((id) => this.revocation.cutoff("user", id, admin.tid, reason));
      revocations.push(...impact.sessions.map((id) => this.revocation.cutoff("session", id, admin.tid, reason)));
      const now = this.clock.now();
      for (const id of impact.sessions) tx.update(sessions).set({ revokedAt: now }).where(eq(sessions.id, id)).run();
      counts = { users: impact.users.length, sessions: impact.sessions.length };
      this.audit.append(
        tx,
        this.event(admin, AuditAction.bulkRevocationConfirmed, { type: scope, id: role ?? admin.tid }, meta, {
          scope,
          role,
          ...counts,
          confirm_id: confirmId,
        }),
      );
      return revocations;
    });
    return counts;
  }

  private revokeUser(tenantId: string, userId: string, reason: string, alongside?: (tx: Db) => void): Promise<void> {
    return this.revocation.commitFound([this.revocation.cutoff("user", userId, tenantId, reason)], (tx) => {
      alongside?.(tx);
      return this.revokeLiveSessions(tx, eq(sessions.userId, userId), tenantId, reason);
    });
  }

  event(
    admin: Principal,
    action: SecurityEvent["action"],
    target: SecurityEvent["target"],
    meta: RequestMeta,
    params?: Record<string, unknown>,
  ): SecurityEvent {
    return callerEvent(admin, action, target, meta, params);
  }

  /** For actions that change nothing else (a preview, a read): the event in its own transaction. */
  record(
    admin: Principal,
    action: SecurityEvent["action"],
    target: SecurityEvent["target"],
    meta: RequestMeta,
    params?: Record<string, unknown>,
  ): void {
    this.audit.record(this.event(admin, action, target, meta, params));
  }
}

class CallerDisabled extends HttpProblem {
  constructor() {
    super(403, "caller-disabled", "Your account was disabled while this request ran; nothing was changed.");
  }
}
