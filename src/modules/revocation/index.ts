import { Elysia } from "elysia";
import type { Db } from "../../../db/client";
import type { Role } from "../../../db/schema";
import type { Clock } from "../../lib/clock";
import { HttpProblem, invalidField } from "../../lib/problem";
import { sha256Hex } from "../../lib/secrets";
import { ADMIN, authPlugin } from "../../plugins/auth";
import { leanPost } from "../../plugins/lean-routes";
import { requestMetaOf } from "../../plugins/request-context";
import { JSON_OR_FORM } from "../../plugins/request-guards";
import type { AdminService } from "../admin/service";
import { AuditAction } from "../audit/actions";
import type { Security } from "../auth/setup";
import { CONFIRM_TTL_MS, openConfirmToken, signConfirmToken } from "./bulk";
import {
  confirmed,
  confirmRequest,
  listQuery,
  preview,
  previewRequest,
  type RevokeRequest,
  revocationList,
  revoked,
  revokeRequest,
} from "./model";

interface ListedRow {
  kind: "token" | "session" | "user" | "tenant";
  subject: string;
  reason: string;
  revoked_at: number;
  expires_at: number;
}

const LIST_SQL = `
  SELECT * FROM (
    SELECT 'token' AS kind, jti AS subject, reason, revoked_at, expires_at FROM revoked_tokens WHERE tenant_id = ?1
    UNION ALL
    SELECT scope, subject, reason, cutoff_at, expires_at FROM revocation_cutoffs WHERE tenant_id = ?1
  )
  WHERE revoked_at < ?2 OR (revoked_at = ?2 AND subject < ?3)
  ORDER BY revoked_at DESC, subject DESC
  LIMIT ?4`;

function decodeCursor(cursor: string | undefined): [number, string] {
  if (!cursor) return [Number.MAX_SAFE_INTEGER, ""];
  // A jti may hold "|" itself: the time is what comes before the first.
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const bar = text.indexOf("|");
  const atMs = bar > 0 ? Number(text.slice(0, bar)) : Number.NaN;
  const subject = text.slice(bar + 1);
  if (!Number.isSafeInteger(atMs))
    throw invalidField("cursor", "not a cursor this API returned (pass next_cursor as it came)", "query");
  return [atMs, subject];
}

/** Admin revocation: one token, user or session; a paginated list; bulk preview → confirm. */
export const revocationModule = (deps: { db: Db; clock: Clock; security: Security; admin: AdminService }) => {
  const { admin } = deps;
  const { confirmKey } = deps.security.secrets;
  // An audited write on the hot path: served by the lean path in front of Elysia (src/plugins/lean-routes.ts).
  const revoke = leanPost(ADMIN, 201, async (principal, body: RevokeRequest, context) => {
    const meta = requestMetaOf(context.request, context, context.server);
    const given = (["jti", "user_id", "session_id"] as const).filter((field) => body[field] !== undefined);
    if (given.length !== 1) {
      throw new HttpProblem(422, "validation", "Send exactly one of jti, user_id or session_id.", {
        errors: (given.length ? given : ["jti"]).map((field) => ({
          in: "body",
          field,
          message: "exactly one of jti, user_id, session_id",
        })),
      });
    }
    if (body.jti) return await admin.revokeByJti(principal, body.jti, meta);
    if (body.user_id) return await admin.revokeUserTokens(principal, body.user_id, meta);
    return await admin.revokeSession(principal, body.session_id ?? "", meta);
  });
  return new Elysia({ name: "revocation-routes", tags: ["revocation"] })
    .use(authPlugin(deps.security.tokens, deps.security.audit))
    .post("/v1/admin/revocations", revoke.handler, {
      auth: revoke.roles,
      body: revokeRequest,
      parse: JSON_OR_FORM,
      response: { 201: revoked },
      detail: {
        summary: "Revoke a token, a user's tokens or a session",
        description: "Takes effect on the very next request, here and (with Redis) on every node.",
      },
    })
    .get(
      "/v1/admin/revocations",
      ({ principal, query }) => {
        const limit = query.limit ?? 50;
        const [beforeAt, beforeSubject] = decodeCursor(query.cursor);
        const rows = deps.db.$client
          .query<ListedRow, [string, number, string, number]>(LIST_SQL)
          .all(principal.tid, beforeAt, beforeSubject, limit + 1);
        const shown = rows.slice(0, limit);
        const last = shown.at(-1);
        return {
          revocations: shown.map((row) => ({
            kind: row.kind,
            subject: row.subject,
            reason: row.reason,
            revoked_at: new Date(row.revoked_at).toISOString(),
            expires_at: new Date(row.expires_at).toISOString(),
          })),
          next_cursor:
            rows.length > limit && last
              ? Buffer.from(`${last.revoked_at}|${last.subject}`).toString("base64url")
              : null,
        };
      },
      {
        auth: ADMIN,
        query: listQuery,
        response: revocationList,
        detail: {
          summary: "Active revocations, newest first",
          description:
            "Cursor-paginated: pass `next_cursor` as `cursor`. A user or session revoked again moves to the front with its new cut-off, so a walk already under way may not meet it again.",
        },
      },
    )
    .post(
      "/v1/admin/revocations/preview",
      ({ principal, body, request, server, set }) => {
        if (body.scope === "role" && !body.role) {
          throw new HttpProblem(422, "validation", 'scope "role" needs a role.', {
            errors: [{ in: "body", field: "role", message: "required when scope is role" }],
          });
        }
        // A role next to scope "tenant" most likely meant scope "role": revoking the whole tenant instead would be the costly reading.
        if (body.scope === "tenant" && body.role) {
          throw new HttpProblem(
            422,
            "validation",
            'scope "tenant" takes no role; send scope "role" to revoke one role.',
            {
              errors: [{ in: "body", field: "role", message: 'only with scope "role"' }],
            },
          );
        }
        const role: Role | undefined = body.scope === "role" ? body.role : undefined;
        const impact = admin.bulkImpact(principal.tid, body.scope, role);
        const expiresAt = deps.clock.now() + CONFIRM_TTL_MS;
        const token = signConfirmToken(confirmKey, {
          tenantId: principal.tid,
          scope: body.scope,
          role,
          actor: principal.sub,
          expiresAt,
        });
        admin.record(
          principal,
          AuditAction.bulkRevocationPreviewed,
          { type: body.scope, id: role ?? principal.tid },
          requestMetaOf(request, set, server),
          { scope: body.scope, role },
        );
        return {
          scope: body.scope,
          ...(role ? { role } : {}),
          affected: { users: impact.users.length, sessions: impact.sessions.length },
          confirm_token: token,
          expires_at: new Date(expiresAt).toISOString(),
        };
      },
      {
        auth: ADMIN,
        body: previewRequest,
        parse: JSON_OR_FORM,
        response: preview,
        detail: {
          summary: "Preview a bulk revocation (tenant or role)",
          description:
            "Returns what would be revoked and a confirm token valid for 5 minutes, usable only by the same admin.",
        },
      },
    )
    .post(
      "/v1/admin/revocations/confirm",
      async ({ principal, body, request, server, set }) => {
        const bulk = openConfirmToken(confirmKey, body.confirm_token, deps.clock.now(), {
          tenantId: principal.tid,
          actor: principal.sub,
        });
        const confirmId = sha256Hex(body.confirm_token).slice(0, 32);
        const scope = { scope: bulk.scope, role: bulk.role, confirmId };
        return { revoked: await admin.bulkRevoke(principal, scope, requestMetaOf(request, set, server)) };
      },
      {
        auth: ADMIN,
        body: confirmRequest,
        parse: JSON_OR_FORM,
        response: confirmed,
        detail: { summary: "Carry out a previewed bulk revocation" },
      },
    );
};
