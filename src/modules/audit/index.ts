import { Elysia } from "elysia";
import type { Db } from "../../../db/client";
import { ADMIN, authPlugin, type Principal } from "../../plugins/auth";
import { type RequestMeta, requestMetaOf } from "../../plugins/request-context";
import type { Security } from "../auth/setup";
import { AuditAction } from "./actions";
import { actorOf, type SecurityEvent } from "./hook";
import { auditPage, auditQuery, chainReport, listQuery } from "./model";
import { type AuditFilter, exportEvents, publicEvent, queryEvents } from "./query";
import type { ChainVerifier } from "./verifier";

/** Reading the trail, exporting it and verifying its chain: admin only, own tenant only, and each read is audited. */
export const auditModule = (deps: { db: Db; security: Security; auditVerifier: ChainVerifier }) => {
  const { audit } = deps.security;
  const sqlite = deps.db.$client;
  const recordRead = (
    principal: Principal,
    action: SecurityEvent["action"],
    meta: RequestMeta,
    params: AuditFilter | object,
  ) =>
    audit.record({
      action,
      outcome: "success",
      tenantId: principal.tid,
      actor: actorOf(principal),
      target: { type: "audit", id: principal.tid },
      params: params as Record<string, unknown>,
      requestId: meta.requestId,
      ip: meta.ip,
      userAgent: meta.userAgent,
    });

  return new Elysia({ name: "audit-routes", tags: ["audit"] })
    .use(authPlugin(deps.security.tokens, audit))
    .get(
      "/v1/audit",
      ({ principal, query, request, server, set }) => {
        const limit = query.limit ?? 50;
        const page = queryEvents(sqlite, principal.tid, query, query.cursor ?? Number.MAX_SAFE_INTEGER, limit + 1);
        const shown = page.rows.slice(0, limit);
        recordRead(principal, AuditAction.auditRead, requestMetaOf(request, set, server), query);
        return {
          events: shown.map(publicEvent),
          next_cursor: page.rows.length > limit ? (shown.at(-1)?.seq ?? null) : page.resumeAt,
        };
      },
      {
        auth: ADMIN,
        query: listQuery,
        response: auditPage,
        detail: {
          summary: "Audit events, newest first",
          description:
            "Filters: actor id, action (whole dot-separated segments: `auth.login` is it and its `auth.login.*` children; `token.` every `token.*`), target id, outcome, from/to (RFC 3339). Cursor pagination by seq. A filter no index answers (an outcome, a common action, actor and target together) reads at most 50 000 seqs a page: a page may then hold fewer than `limit` events, even none, with a `next_cursor`; follow it until it is null.",
        },
      },
    )
    .get(
      "/v1/audit/export",
      ({ principal, query, request, server, set }) => {
        const stream = exportEvents(sqlite, principal.tid, query);
        recordRead(principal, AuditAction.auditExported, requestMetaOf(request, set, server), query);
        return new Response(stream, {
          headers: {
            "content-type": "application/x-ndjson",
            "content-disposition": `attachment; filename="audit-${principal.tid}.ndjson"`,
            "cache-control": "no-store",
          },
        });
      },
      {
        auth: ADMIN,
        query: auditQuery,
        detail: {
          summary: "Export audit events as NDJSON (streamed)",
          description: "Same filters as GET /v1/audit.",
          responses: {
            200: {
              description: "One audit event as JSON per line, newest first",
              content: { "application/x-ndjson": { schema: { type: "string" } } },
            },
          },
        },
      },
    )
    .get(
      "/v1/audit/verify",
      async ({ principal, request, server, set }) => {
        const report = await deps.auditVerifier.verifyAll();
        recordRead(principal, AuditAction.auditVerified, requestMetaOf(request, set, server), {});
        return {
          ok: report.ok,
          checked: report.checked,
          from: report.from,
          ...(report.brokenAt ? { broken_at: report.brokenAt.seq, reason: report.brokenAt.reason } : {}),
          ...(report.head ? { head: report.head } : {}),
        };
      },
      {
        auth: ADMIN,
        response: chainReport,
        detail: {
          summary: "Verify the audit chain",
          description:
            "Recomputes every link and names the first broken one. `ok: false` means the trail was tampered with.",
        },
      },
    );
};
