import type { Db } from "../../../db/client";
import type { Role } from "../../../db/schema";
import type { Config } from "../../config";
import type { Clock } from "../../lib/clock";
import { isEmailAddress } from "../../lib/formats";
import { OAUTH_NO_STORE, oauthDescription } from "../../lib/oauth";
import { HttpProblem } from "../../lib/problem";
import { randomToken, sha256Hex, ulid } from "../../lib/secrets";
import type { WriteBatcher } from "../../lib/write-batcher";
import type { RequestMeta } from "../../plugins/request-context";
import type { IdentityService } from "../admin/identity";
import { AuditAction } from "../audit/actions";
import { type AuditHook, requestEvent, type SecurityEvent } from "../audit/hook";
import type { RevocationService } from "../revocation/service";
import type { AccessTokens } from "./access-tokens";
import { verifyPassword } from "./passwords";
import type { AuthQueries } from "./queries";
import { REFRESH_PREFIX, type Session, type SessionService } from "./sessions";

export type { RequestMeta };

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token: string;
}

/** OAuth 2.0 token-endpoint error (RFC 6749 §5.2), carried in our problem+json shape. */
export function oauthError(
  code: "invalid_request" | "invalid_grant" | "invalid_client" | "invalid_scope" | "unsupported_grant_type",
  description: string,
  field?: string,
) {
  return new HttpProblem(400, code.replace(/_/g, "-"), description, {
    extensions: { error: code, error_description: oauthDescription(description) },
    headers: OAUTH_NO_STORE,
    errors: field === undefined ? undefined : [{ in: "body", field, message: description }],
  });
}

const INVALID_CREDENTIALS = "The credentials are invalid.";

export interface AuthServiceDeps {
  db: Db;
  clock: Clock;
  config: Config;
  identity: IdentityService;
  tokens: AccessTokens;
  revocation: RevocationService;
  audit: AuditHook;
  /** Group commit for the writes every login and refresh makes. */
  batcher: WriteBatcher;
  sessions: SessionService;
}

const NOT_AN_EMAIL = "(not an email address: not recorded)";
const NO_SUCH_TENANT = "(no such tenant: not recorded)";

/** Logins and refresh rotation with reuse detection (sessions end in sessions.ts). */
const RETRIED_WITHIN_GRACE =
  "presented again within REFRESH_TOKEN_REUSE_GRACE_SECONDS of its rotation: the token that rotation issued is superseded";

export class AuthService {
  private readonly queries: AuthQueries;

  constructor(private readonly deps: AuthServiceDeps) {
    this.queries = deps.identity.queries;
  }

  async passwordGrant(input: { tenant: string; username: string; password: string }, meta: RequestMeta) {
    const user = this.deps.identity.findUserByEmail(input.tenant, input.username);
    const valid = await verifyPassword(input.password, user?.passwordHash);
    if (!user || !valid || user.disabledAt !== null) {
      // An unknown username that is no email address is most often a password typed one field
      // early: the trail is append-only, so it is not kept.
      const username = user || isEmailAddress(input.username) ? input.username : NOT_AN_EMAIL;
      // Attempts on a tenant that exists are its admins' to see, known username or not. A tenant
      // no one has is as likely a secret typed into the wrong field: not kept either.
      const tenantId = user?.tenantId ?? (this.deps.identity.hasTenant(input.tenant) ? input.tenant : null);
      this.deps.audit.record(
        requestEvent(AuditAction.loginFailed, "failure", meta, {
          tenantId,
          actor: { type: "anonymous", id: null },
          target: user ? { type: "user", id: user.id } : undefined,
          reason: !user ? "unknown user" : !valid ? "wrong password" : "user disabled",
          params: { grant_type: "password", tenant: tenantId === null ? NO_SUCH_TENANT : input.tenant, username },
        }),
      );
      throw oauthError("invalid_grant", INVALID_CREDENTIALS);
    }
    return this.openSession(
      { tenantId: user.tenantId, userId: user.id, role: user.role, grant: "password" },
      (sessionId) =>
        requestEvent(AuditAction.loginSucceeded, "success", meta, {
          tenantId: user.tenantId,
          actor: { type: "user", id: user.id },
          target: { type: "session", id: sessionId },
          params: { grant_type: "password", tenant: input.tenant, username: input.username },
        }),
      meta,
    );
  }

  async clientCredentialsGrant(input: { client_secret: string; client_id?: string }, meta: RequestMeta) {
    const key = this.deps.identity.verifyApiKey(input.client_secret);
    const owner = key ? this.queries.userById.get({ id: key.userId }) : undefined;
    if (!key || !owner || owner.disabledAt !== null || (input.client_id !== undefined && input.client_id !== key.id)) {
      // A revoked or wrong-secret key still names its tenant: its admin should see the attempt.
      const named =
        key ?? this.queries.apiKeyById.get({ id: /^wdn_([0-9a-z]{16})_/.exec(input.client_secret)?.[1] ?? "" });
      this.deps.audit.record(
        requestEvent(AuditAction.loginFailed, "failure", meta, {
          tenantId: named?.tenantId ?? null,
          target: named ? { type: "api_key", id: named.id } : undefined,
          actor: { type: "anonymous", id: null },
          reason: "invalid client credentials",
          params: { grant_type: "client_credentials" },
        }),
      );
      throw oauthError("invalid_client", "The client credentials are invalid.");
    }
    return this.openSession(
      { tenantId: key.tenantId, userId: key.userId, role: key.role, grant: "client_credentials", apiKeyId: key.id },
      (sessionId) =>
        requestEvent(AuditAction.tokenIssued, "success", meta, {
          tenantId: key.tenantId,
          actor: { type: "api_key", id: key.id },
          target: { type: "session", id: sessionId },
          params: { grant_type: "client_credentials" },
        }),
      meta,
    );
  }

  /**
   * `client`, when the request authenticated (HTTP Basic): it must be the API key the session was
   * opened with; a password session has no client to authenticate as.
   */
  async refreshGrant(
    input: { refresh_token: string; client?: { client_id: string; client_secret: string } },
    meta: RequestMeta,
  ): Promise<TokenResponse> {
    const { db, clock } = this.deps;
    const hash = sha256Hex(input.refresh_token);
    const row = this.queries.refreshByHash.get({ hash });
    const session = row ? this.queries.sessionById.get({ id: row.sessionId }) : undefined;
    if (input.client !== undefined) {
      const key = this.deps.identity.verifyApiKey(input.client.client_secret);
      if (!key || key.id !== input.client.client_id || !session || session.apiKeyId !== key.id) {
        throw oauthError("invalid_client", "The client credentials are invalid for this refresh token.");
      }
    }
    if (!row || !session) throw oauthError("invalid_grant", "The refresh token is invalid.");
    const actor = {
      type: session.apiKeyId ? ("api_key" as const) : ("user" as const),
      id: session.apiKeyId ?? session.userId,
    };

    if (row.usedAt !== null && !this.retriedWithinGrace(hash, session.id))
      return this.refreshReused(session, meta, actor);
    const role = this.liveRole(session);
    const refused =
      session.revokedAt !== null
        ? "session revoked"
        : session.expiresAt <= clock.now() || row.expiresAt <= clock.now()
          ? "session expired"
          : !role
            ? "user disabled or API key revoked"
            : undefined;
    if (refused !== undefined || !role)
      this.refreshRefused(session, meta, actor, refused ?? "user disabled or API key revoked");

    const next = this.newRefreshToken();
    const rotated = await this.deps.batcher.run(() => {
      const now = clock.now();
      // Disabled, or the session revoked, while this request was on its way: asked again inside
      // the write, which is ordered with every disable and revocation (as a login's is).
      const current = this.queries.sessionById.get({ id: session.id });
      if (current?.revokedAt !== null || !this.stillAllowed(session.userId, session.apiKeyId ?? undefined)) {
        return "refused" as const;
      }
      let retried = false;
      // Used meanwhile (a concurrent refresh won): reuse, unless it is a retry within the grace.
      if (this.queries.useRefresh.run(now, hash).changes !== 1) {
        if (!this.retriedWithinGrace(hash, session.id)) return false;
        this.queries.supersede.run(now, session.id);
        retried = true;
      }
      this.queries.insertRefresh.run(sha256Hex(next), session.id, now, session.expiresAt);
      this.deps.audit.append(
        db,
        requestEvent(AuditAction.tokenRefreshed, "success", meta, {
          tenantId: session.tenantId,
          actor,
          target: { type: "session", id: session.id },
          ...(retried ? { reason: RETRIED_WITHIN_GRACE } : {}),
        }),
      );
      return true;
    });
    if (rotated === "refused") {
      this.refreshRefused(session, meta, actor, "session revoked or user disabled while the refresh was on its way");
    }
    if (!rotated) return this.refreshReused(session, meta, actor);

    const access = await this.deps.tokens.issue({
      sub: session.userId,
      tid: session.tenantId,
      role,
      sid: session.id,
      client_id: session.apiKeyId ?? undefined,
    });
    return this.tokenResponse(access.token, next);
  }

  /**
   * A refresh token presented again within REFRESH_TOKEN_REUSE_GRACE_SECONDS of its rotation, as
   * a client does that never got the answer (a dropped connection, two tabs refreshing at once):
   * it rotates again, and the token the first rotation issued is superseded. Only the session's
   * latest rotated token qualifies, and not one that was superseded itself (that is reuse).
   */
  private retriedWithinGrace(hash: string, sessionId: string): boolean {
    const grace = this.deps.config.jwt.refreshReuseGraceSeconds * 1000;
    if (grace === 0) return false;
    const uses = this.queries.refreshUses.get(sessionId, hash);
    if (!uses || uses.used_at === null || uses.superseded_at !== null) return false;
    return uses.latest === hash && this.deps.clock.now() - uses.used_at <= grace;
  }

  /**
   * Refused, and audited: a revoked session's token still in use (after a logout, a revocation)
   * is worth an admin's look.
   */
  private refreshRefused(session: Session, meta: RequestMeta, actor: SecurityEvent["actor"], reason: string): never {
    this.deps.audit.record(
      requestEvent(AuditAction.tokenRefreshed, "denied", meta, {
        tenantId: session.tenantId,
        actor,
        target: { type: "session", id: session.id },
        reason,
      }),
    );
    throw oauthError("invalid_grant", "The refresh token has expired or its session was revoked.");
  }

  private async refreshReused(session: Session, meta: RequestMeta, actor: SecurityEvent["actor"]): Promise<never> {
    await this.deps.sessions.revokeSessions(
      [session.id],
      session.tenantId,
      "refresh token reused",
      requestEvent(AuditAction.refreshReused, "denied", meta, {
        tenantId: session.tenantId,
        actor,
        target: { type: "session", id: session.id },
        reason: "a rotated refresh token was presented again; the session is revoked",
      }),
    );
    throw oauthError("invalid_grant", "The refresh token was already used; the session has been revoked.");
  }

  /** The role a session's next token carries: the user's (or key's) current one, if still allowed. */
  private liveRole(session: Session): Role | undefined {
    const user = this.queries.userById.get({ id: session.userId });
    if (!user || user.disabledAt !== null) return undefined;
    if (!session.apiKeyId) return user.role;
    const key = this.queries.apiKeyById.get({ id: session.apiKeyId });
    return key && key.revokedAt === null ? key.role : undefined;
  }

  /** A session, its first refresh token and the audit event of the login, in one commit. */
  private async openSession(
    input: { tenantId: string; userId: string; role: Role; grant: Session["grant"]; apiKeyId?: string },
    audited: (sessionId: string) => SecurityEvent,
    meta: RequestMeta,
  ): Promise<TokenResponse> {
    const { db, clock, config } = this.deps;
    const now = clock.now();
    const session: Session = {
      id: ulid(now),
      tenantId: input.tenantId,
      userId: input.userId,
      apiKeyId: input.apiKeyId ?? null,
      role: input.role,
      grant: input.grant,
      ip: meta.ip,
      userAgent: meta.userAgent?.slice(0, 256) ?? null,
      createdAt: now,
      expiresAt: now + config.jwt.refreshTokenTtlSeconds * 1000,
      revokedAt: null,
    };
    const refresh = this.newRefreshToken();
    const refused = input.apiKeyId
      ? oauthError("invalid_client", "The client credentials are invalid.")
      : oauthError("invalid_grant", INVALID_CREDENTIALS);
    try {
      await this.deps.batcher.run(() => {
        // Disabled or revoked while the credentials were checked (argon2 alone takes milliseconds):
        // asked again inside the write, which is ordered with every disable and key revocation, so
        // either this login sees it or it sees (and revokes) this session.
        if (!this.stillAllowed(input.userId, input.apiKeyId)) throw refused;
        this.insertSession(session, refresh, now);
        this.deps.audit.append(db, audited(session.id));
      });
    } catch (error) {
      if (error !== refused) throw error;
      this.deps.audit.record(
        requestEvent(AuditAction.loginFailed, "failure", meta, {
          tenantId: input.tenantId,
          actor: { type: "anonymous", id: null },
          target: input.apiKeyId ? { type: "api_key", id: input.apiKeyId } : { type: "user", id: input.userId },
          reason: input.apiKeyId ? "api key revoked or owner disabled during login" : "user disabled during login",
          params: { grant_type: input.grant },
        }),
      );
      throw error;
    }
    const access = await this.deps.tokens.issue({
      sub: input.userId,
      tid: input.tenantId,
      role: input.role,
      sid: session.id,
      client_id: input.apiKeyId,
    });
    return this.tokenResponse(access.token, refresh);
  }

  private stillAllowed(userId: string, apiKeyId: string | undefined): boolean {
    const user = this.queries.userById.get({ id: userId });
    if (!user || user.disabledAt !== null) return false;
    if (apiKeyId === undefined) return true;
    const key = this.queries.apiKeyById.get({ id: apiKeyId });
    return key !== undefined && key.revokedAt === null;
  }

  private insertSession(session: Session, refresh: string, now: number): void {
    this.queries.insertSession.run(
      session.id,
      session.tenantId,
      session.userId,
      session.apiKeyId,
      session.role,
      session.grant,
      session.ip,
      session.userAgent,
      session.createdAt,
      session.expiresAt,
    );
    this.queries.insertRefresh.run(sha256Hex(refresh), session.id, now, session.expiresAt);
    if (session.apiKeyId) this.queries.touchApiKey.run({ id: session.apiKeyId, now });
  }

  private newRefreshToken(): string {
    return `${REFRESH_PREFIX}${randomToken(32)}`;
  }

  private tokenResponse(accessToken: string, refreshToken: string): TokenResponse {
    return {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: this.deps.config.jwt.accessTokenTtlSeconds,
      refresh_token: refreshToken,
    };
  }
}
