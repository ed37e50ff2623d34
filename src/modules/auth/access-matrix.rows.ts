/** The access matrix's rows (access-matrix.test.ts): every protected route, how to call it, and what each role gets. */
import type { Role } from "../../../db/schema";
import { type Member, TENANT_A, type Token, type World } from "../../testing/matrix";
import {
  deadDeliveryOfA,
  endpointOfA,
  feedbackTarget,
  nextSerial,
  notificationFor,
  previewed,
  revocationTarget,
} from "./access-matrix.targets";

export const PUBLIC = ["POST /v1/auth/token", "POST /v1/auth/revoke"];
const ANY: readonly Role[] = ["viewer", "developer", "admin"];
const ADMIN: readonly Role[] = ["admin"];
const DEVELOPER: readonly Role[] = ["developer", "admin"];
/** DESIGN §4: at most 30 s of clock skew is tolerated. */
export const SKEW_SECONDS = 30;

export interface Caller {
  readonly member?: Member;
  readonly token?: Token;
  /** The tenant-A member whose own things the request targets: the caller, or A's admin for outsiders. */
  readonly self: Member;
}

export interface Spec {
  readonly path: string;
  readonly body?: unknown;
  /** Tenant-A ids a successful answer to an A caller lists, and tenant B's admin must never see. */
  readonly targets?: readonly string[];
  /** An access token of tenant A that the request revokes when (and only when) it succeeds. */
  readonly witness?: string;
}

export interface Row {
  readonly route: string;
  readonly variant?: string;
  readonly roles: readonly Role[];
  /** Status when the request succeeds. */
  readonly ok: number;
  /** Status for tenant B's admin presenting tenant A's ids. */
  readonly cross: number;
  /** The route acts on the caller's own things, so tenant B's admin succeeds on its own. */
  readonly own?: boolean;
  build(w: World, caller: Caller): Spec | Promise<Spec>;
}

const endpointRoute = (suffix: string, method = "POST", extra: Partial<Row> = {}): Row => ({
  route: `${method} /v1/webhooks/endpoints/:id${suffix}`,
  roles: ADMIN,
  ok: 200,
  cross: 404,
  ...extra,
  build: async (w) => ({
    path: `/v1/webhooks/endpoints/${await endpointOfA(w)}${suffix}`,
    body:
      suffix === "/replay"
        ? { since: "2020-01-01T00:00:00Z" }
        : method === "PATCH"
          ? { description: "renamed" }
          : undefined,
  }),
});

export const rows: Row[] = [
  { route: "GET /v1/auth/me", roles: ANY, ok: 200, cross: 200, own: true, build: () => ({ path: "/v1/auth/me" }) },
  {
    route: "POST /v1/auth/logout",
    roles: ANY,
    ok: 204,
    cross: 204,
    own: true,
    // The witness is a second access token of the caller's own session.
    build: async (w, c) => ({ path: "/v1/auth/logout", witness: c.token && (await w.refreshed(c.token)) }),
  },
  {
    route: "GET /v1/auth/sessions",
    roles: ANY,
    ok: 200,
    cross: 200,
    own: true,
    build: async (w, c) => ({ path: "/v1/auth/sessions", targets: [(await w.token(c.self)).sid] }),
  },
  {
    route: "DELETE /v1/auth/sessions/:id",
    roles: ANY,
    ok: 204,
    cross: 404,
    build: async (w, c) => {
      const session = await w.token(c.self);
      return { path: `/v1/auth/sessions/${session.sid}`, witness: session.access };
    },
  },
  {
    route: "POST /v1/admin/users",
    roles: ADMIN,
    ok: 201,
    cross: 201,
    build: () => ({ path: "/v1/admin/users", body: { email: `new-${nextSerial()}@example.test`, role: "viewer" } }),
  },
  {
    route: "GET /v1/admin/users",
    roles: ADMIN,
    ok: 200,
    cross: 200,
    build: (w) => ({ path: "/v1/admin/users?limit=200", targets: [w.freshMember("viewer").userId] }),
  },
  {
    route: "POST /v1/admin/users/:id/disable",
    roles: ADMIN,
    ok: 200,
    cross: 404,
    build: async (w) => {
      const member = w.freshMember("viewer");
      return { path: `/v1/admin/users/${member.userId}/disable`, witness: (await w.token(member)).access };
    },
  },
  {
    route: "POST /v1/admin/users/:id/enable",
    roles: ADMIN,
    ok: 200,
    cross: 404,
    build: (w) => {
      const { userId } = w.freshMember("viewer");
      const { db, security } = w.ctx.deps;
      db.transaction((tx) => security.identity.setUserDisabled(tx, TENANT_A, userId, true));
      return { path: `/v1/admin/users/${userId}/enable` };
    },
  },
  {
    route: "POST /v1/admin/api-keys",
    roles: ADMIN,
    ok: 201,
    // Another tenant's user is named in the body: as unknown as one that does not exist.
    cross: 422,
    build: (w) => ({
      path: "/v1/admin/api-keys",
      body: { name: "matrix", role: "viewer", user_id: w.a.developer.userId },
    }),
  },
  {
    route: "GET /v1/admin/api-keys",
    roles: ADMIN,
    ok: 200,
    cross: 200,
    build: (w) => ({ path: "/v1/admin/api-keys", targets: [w.freshMember("viewer").apiKeyId] }),
  },
  {
    route: "DELETE /v1/admin/api-keys/:id",
    roles: ADMIN,
    ok: 204,
    cross: 404,
    build: async (w) => {
      const member = w.freshMember("developer");
      return { path: `/v1/admin/api-keys/${member.apiKeyId}`, witness: (await w.token(member)).access };
    },
  },
  {
    route: "GET /v1/admin/sessions",
    roles: ADMIN,
    ok: 200,
    // Another tenant's user filters as one that does not exist: an empty list.
    cross: 200,
    build: async (w) => {
      const member = w.freshMember("developer");
      const session = await w.token(member);
      return { path: `/v1/admin/sessions?user_id=${member.userId}`, targets: [session.sid] };
    },
  },
  {
    route: "POST /v1/admin/revocations",
    variant: "{user_id}",
    roles: ADMIN,
    ok: 201,
    // Another tenant's id named in the body: as unknown as one that does not exist.
    cross: 422,
    build: (w) => revocationTarget(w, (m) => ({ user_id: m.userId })),
  },
  {
    route: "POST /v1/admin/revocations",
    variant: "{session_id}",
    roles: ADMIN,
    ok: 201,
    // Another tenant's id named in the body: as unknown as one that does not exist.
    cross: 422,
    build: (w) => revocationTarget(w, (_, t) => ({ session_id: t.sid })),
  },
  {
    route: "POST /v1/admin/revocations",
    variant: "{jti}",
    roles: ADMIN,
    ok: 201,
    // ? No token registry exists, so any jti is accepted; what matters is that A's token lives on.
    cross: 201,
    build: (w) => revocationTarget(w, (_, t) => ({ jti: t.jti })),
  },
  {
    route: "GET /v1/admin/revocations",
    roles: ADMIN,
    ok: 200,
    cross: 200,
    build: (w) => {
      // One millisecond later than anything before it, so it is first on the newest-first list.
      w.ctx.clock.advance(1);
      const jti = `matrix-jti-${nextSerial()}`;
      const { revocation } = w.ctx.deps.security;
      revocation.commit([revocation.token(jti, TENANT_A, w.ctx.clock.now() + revocation.coverMs, "matrix")]);
      return { path: "/v1/admin/revocations?limit=5", targets: [jti] };
    },
  },
  ...(["GET /v1/audit", "GET /v1/audit/export"] as const).map(
    (route): Row => ({
      route,
      roles: ADMIN,
      ok: 200,
      cross: 200,
      build: (w) => {
        const marker = `matrix-audit-${nextSerial()}`;
        w.ctx.deps.security.audit.record({
          action: "user.create",
          outcome: "success",
          tenantId: TENANT_A,
          actor: { type: "system", id: "matrix" },
          target: { type: "user", id: marker },
        });
        return { path: `${route.slice(4)}?target=${marker}`, targets: [marker] };
      },
    }),
  ),
  {
    route: "POST /v1/feedback",
    roles: ANY,
    ok: 202,
    // Feedback always lands in the caller's own tenant.
    cross: 202,
    build: () => ({
      path: "/v1/feedback",
      body: { subject_type: "incident", subject_id: `matrix-${nextSerial()}`, verdict: "useful" },
    }),
  },
  {
    route: "GET /v1/feedback",
    roles: ANY,
    ok: 200,
    cross: 200,
    build: async (w) => {
      const { subject, id } = await feedbackTarget(w);
      return { path: `/v1/feedback?subject_id=${subject}`, targets: [id] };
    },
  },
  {
    route: "GET /v1/feedback/summary",
    roles: ANY,
    ok: 200,
    cross: 200,
    build: async (w) => ({ path: "/v1/feedback/summary", targets: [(await feedbackTarget(w)).subject] }),
  },
  { route: "GET /v1/audit/verify", roles: ADMIN, ok: 200, cross: 200, build: () => ({ path: "/v1/audit/verify" }) },
  {
    route: "POST /v1/admin/revocations/preview",
    roles: ADMIN,
    ok: 200,
    cross: 200,
    build: () => ({ path: "/v1/admin/revocations/preview", body: { scope: "role", role: "viewer" } }),
  },
  {
    route: "POST /v1/notifications",
    roles: DEVELOPER,
    ok: 201,
    // Tenant A's users are unknown recipients to anyone else.
    cross: 422,
    build: (w) => ({
      path: "/v1/notifications",
      body: { recipients: { user_ids: [w.a.viewer.userId] }, type: "matrix.test", title: "hello" },
    }),
  },
  {
    route: "GET /v1/notifications",
    roles: ANY,
    ok: 200,
    cross: 200,
    own: true,
    build: async (w, c) => ({ path: "/v1/notifications", targets: [await notificationFor(w, c.self)] }),
  },
  {
    route: "GET /v1/notifications/unread-count",
    roles: ANY,
    ok: 200,
    cross: 200,
    own: true,
    build: () => ({ path: "/v1/notifications/unread-count" }),
  },
  {
    route: "POST /v1/notifications/:id/read",
    roles: ANY,
    ok: 200,
    cross: 404,
    build: async (w, c) => {
      const id = await notificationFor(w, c.self);
      return { path: `/v1/notifications/${id}/read`, targets: [id] };
    },
  },
  {
    route: "POST /v1/notifications/read-all",
    roles: ANY,
    ok: 200,
    cross: 200,
    own: true,
    build: () => ({ path: "/v1/notifications/read-all" }),
  },
  {
    route: "POST /v1/webhooks/endpoints",
    roles: ADMIN,
    ok: 201,
    cross: 201,
    build: () => ({ path: "/v1/webhooks/endpoints", body: { url: "http://127.0.0.1:9/new" } }),
  },
  {
    route: "GET /v1/webhooks/endpoints",
    roles: DEVELOPER,
    ok: 200,
    cross: 200,
    build: async (w) => ({ path: "/v1/webhooks/endpoints", targets: [await endpointOfA(w)] }),
  },
  endpointRoute("", "GET", { roles: DEVELOPER }),
  endpointRoute("", "DELETE", { ok: 204 }),
  endpointRoute("", "PATCH"),
  endpointRoute("/rotate-secret"),
  endpointRoute("/disable"),
  endpointRoute("/enable"),
  endpointRoute("/replay"),
  {
    route: "GET /v1/webhooks/deliveries",
    roles: DEVELOPER,
    ok: 200,
    cross: 200,
    build: async (w) => ({ path: "/v1/webhooks/deliveries?status=dead", targets: [await deadDeliveryOfA(w)] }),
  },
  {
    route: "GET /v1/webhooks/deliveries/:id",
    roles: DEVELOPER,
    ok: 200,
    cross: 404,
    build: async (w) => {
      const id = await deadDeliveryOfA(w);
      return { path: `/v1/webhooks/deliveries/${id}`, targets: [id] };
    },
  },
  {
    route: "POST /v1/webhooks/deliveries/:id/retry",
    roles: ADMIN,
    ok: 202,
    cross: 404,
    build: async (w) => ({ path: `/v1/webhooks/deliveries/${await deadDeliveryOfA(w)}/retry` }),
  },
  {
    route: "GET /v1/webhooks/stats",
    roles: DEVELOPER,
    ok: 200,
    cross: 200,
    build: () => ({ path: "/v1/webhooks/stats" }),
  },
  {
    route: "POST /v1/admin/revocations/confirm",
    roles: ADMIN,
    ok: 200,
    // A's confirm token is "invalid, expired, or not yours" to anyone else.
    cross: 422,
    build: async (w, c) => {
      const previewer = c.member?.tenant === TENANT_A && c.member.role === "admin" ? c.member : w.a.admin;
      const body = { confirm_token: await previewed(w, previewer) };
      return { path: "/v1/admin/revocations/confirm", body, witness: (await w.token(w.a.viewer)).access };
    },
  },
];
