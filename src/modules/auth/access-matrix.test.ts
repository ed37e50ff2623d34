import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Role } from "../../../db/schema";
import { createWorld, type Member, TENANT_A, TENANT_B, type Token, type World } from "../../testing/matrix";

// Every protected route × every kind of caller → the status DESIGN.md §4–§5 promises.

const PUBLIC = ["POST /v1/auth/token", "POST /v1/auth/revoke"];
const ANY: readonly Role[] = ["viewer", "developer", "admin"];
const ADMIN: readonly Role[] = ["admin"];
const DEVELOPER: readonly Role[] = ["developer", "admin"];
/** DESIGN §4: at most 30 s of clock skew is tolerated. */
const SKEW_SECONDS = 30;

interface Caller {
  readonly member?: Member;
  readonly token?: Token;
  /** The tenant-A member whose own things the request targets: the caller, or A's admin for outsiders. */
  readonly self: Member;
}

interface Spec {
  readonly path: string;
  readonly body?: unknown;
  /** Tenant-A ids a successful answer to an A caller lists, and tenant B's admin must never see. */
  readonly targets?: readonly string[];
  /** An access token of tenant A that the request revokes when (and only when) it succeeds. */
  readonly witness?: string;
}

interface Row {
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

let serial = 0;

async function previewed(w: World, admin: Member): Promise<string> {
  const res = await w.ctx.req("POST", "/v1/admin/revocations/preview", {
    body: { scope: "role", role: "viewer" },
    headers: (await w.token(admin)).auth,
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { confirm_token: string }).confirm_token;
}

/** A tenant-A feedback entry on a subject of its own: what the feedback reads must (not) show. */
async function feedbackTarget(w: World): Promise<{ subject: string; id: string }> {
  const subject = `matrix-subject-${++serial}`;
  const { id } = await w.ctx.deps.feedback.accept(
    { tid: TENANT_A, sub: w.a.viewer.userId },
    { subject_type: "alert", subject_id: subject, verdict: "false_positive" },
  );
  return { subject, id };
}

async function revocationTarget(w: World, body: (m: Member, t: Token) => object): Promise<Spec> {
  const member = w.freshMember("developer");
  const token = await w.token(member);
  return { path: "/v1/admin/revocations", body: body(member, token), witness: token.access };
}

async function endpointOfA(w: World): Promise<string> {
  const res = await w.ctx.req("POST", "/v1/webhooks/endpoints", {
    body: { url: `http://127.0.0.1:9/matrix-${++serial}` },
    headers: (await w.token(w.a.admin)).auth,
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { endpoint: { id: string } }).endpoint.id;
}

/** A notification from A's developer to `recipient`; its id. */
async function notificationFor(w: World, recipient: Member): Promise<string> {
  const res = await w.ctx.req("POST", "/v1/notifications", {
    body: { recipients: { user_ids: [recipient.userId] }, type: "matrix.test", title: `m${++serial}` },
    headers: (await w.token(w.a.developer)).auth,
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { notification: { id: string } }).notification.id;
}

/** A delivery of tenant A (to an endpoint nobody listens on), made dead so it can be retried. */
async function deadDeliveryOfA(w: World): Promise<string> {
  await endpointOfA(w);
  const notification = await notificationFor(w, w.a.viewer);
  const sqlite = w.ctx.deps.db.$client;
  const row = sqlite
    .query<{ id: string }, [string]>("SELECT id FROM webhook_deliveries WHERE notification_id = ? LIMIT 1")
    .get(notification);
  if (!row) throw new Error("no delivery");
  sqlite.query("UPDATE webhook_deliveries SET status = 'dead' WHERE id = ?").run(row.id);
  return row.id;
}

const endpointRoute = (suffix: string, method = "POST", extra: Partial<Row> = {}): Row => ({
  route: `${method} /v1/webhooks/endpoints/:id${suffix}`,
  roles: ADMIN,
  ok: 200,
  cross: 404,
  ...extra,
  build: async (w) => ({
    path: `/v1/webhooks/endpoints/${await endpointOfA(w)}${suffix}`,
    body: suffix === "/replay" ? { since: "2020-01-01T00:00:00Z" } : undefined,
  }),
});

const rows: Row[] = [
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
    build: () => ({ path: "/v1/admin/users", body: { email: `new-${++serial}@example.test`, role: "viewer" } }),
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
    cross: 404,
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
    cross: 404,
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
    cross: 404,
    build: (w) => revocationTarget(w, (m) => ({ user_id: m.userId })),
  },
  {
    route: "POST /v1/admin/revocations",
    variant: "{session_id}",
    roles: ADMIN,
    ok: 201,
    cross: 404,
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
      const jti = `matrix-jti-${++serial}`;
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
        const marker = `matrix-audit-${++serial}`;
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
      body: { subject_type: "incident", subject_id: `matrix-${++serial}`, verdict: "useful" },
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

interface Column {
  readonly name: string;
  readonly caller?: (w: World) => Member;
  readonly headers?: Record<string, string>;
  /** Runs in the dedicated context whose clock is moved past the token's expiry. */
  readonly expired?: boolean;
  readonly expect: (row: Row) => number;
  /** What `WWW-Authenticate` must say on a 401. */
  readonly challenge?: RegExp;
  /** After the request is built, before it is sent. */
  prepare?(w: World, token: Token): Promise<void>;
}

const byRole = (role: Role) => (row: Row) => (row.roles.includes(role) ? row.ok : 403);

const columns: Column[] = [
  { name: "no token", expect: () => 401, challenge: /^Bearer realm="warden"$/ },
  { name: "viewer", caller: (w) => w.a.viewer, expect: byRole("viewer") },
  { name: "developer", caller: (w) => w.a.developer, expect: byRole("developer") },
  { name: "admin", caller: (w) => w.a.admin, expect: byRole("admin") },
  { name: "admin of tenant B", caller: (w) => w.bAdmin, expect: (row) => row.cross },
  {
    name: "revoked admin token",
    caller: (w) => w.a.admin,
    expect: () => 401,
    challenge: /^Bearer realm="warden", error="invalid_token", error_description="[^"]*revoked[^"]*"$/,
    async prepare(w, token) {
      const res = await w.ctx.req("POST", "/v1/admin/revocations", {
        body: { jti: token.jti },
        headers: (await w.token(w.a.admin)).auth,
      });
      expect(res.status).toBe(201);
    },
  },
  {
    name: "expired admin token",
    caller: (w) => w.a.admin,
    expired: true,
    expect: () => 401,
    challenge: /^Bearer realm="warden", error="invalid_token", error_description="[^"]*expired[^"]*"$/,
    async prepare(w) {
      w.ctx.clock.advance((w.ctx.deps.config.jwt.accessTokenTtlSeconds + SKEW_SECONDS + 1) * 1000);
    },
  },
  {
    name: "admin with X-Client-ID of tenant B",
    caller: (w) => w.a.admin,
    headers: { "x-client-id": TENANT_B },
    expect: () => 403,
  },
  {
    name: "admin with X-Client-ID of tenant A",
    caller: (w) => w.a.admin,
    headers: { "x-client-id": TENANT_A },
    expect: (row) => row.ok,
  },
];

const nameOf = (row: Row) => (row.variant ? `${row.route} ${row.variant}` : row.route);
const cases = rows.flatMap((row) => columns.map((column) => [nameOf(row), column.name, column.expect(row)] as const));

let world: World;
// ? ManualClock only moves forward, so expiry gets a context of its own.
let expiredWorld: World;
beforeAll(async () => {
  [world, expiredWorld] = await Promise.all([createWorld(), createWorld()]);
});
afterAll(async () => {
  await Promise.all([world?.ctx.close(), expiredWorld?.ctx.close()]);
});

async function deniedEntry(w: World, requestId: string | null) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const row = w.ctx.auditEvents("access.denied").find((event) => event.request_id === requestId);
    if (row)
      return { outcome: row.outcome, tenant: row.tenant_id, target: { type: row.target_type, id: row.target_id } };
    await Bun.sleep(2);
  }
  return undefined;
}

describe("access matrix", () => {
  test("should cover every protected route the app serves", () => {
    const served = world.ctx.app.routes.map((r) => `${r.method} ${r.path}`);
    for (const route of PUBLIC) expect(served).toContain(route);
    const protectedRoutes = served.filter((r) => r.split(" ")[1]?.startsWith("/v1/") && !PUBLIC.includes(r));
    const covered = new Set(rows.map((row) => row.route));
    expect([...covered].sort()).toEqual([...new Set(protectedRoutes)].sort());
  });

  test.each(cases)("should answer %s as %s with %d", async (rowName, columnName, expected) => {
    const row = rows.find((r) => nameOf(r) === rowName);
    const column = columns.find((c) => c.name === columnName);
    if (!row || !column) throw new Error(`unknown case ${rowName} × ${columnName}`);
    const w = column.expired ? expiredWorld : world;
    const member = column.caller?.(w);
    const token = member ? await w.token(member) : undefined;
    const self = member?.tenant === TENANT_A ? member : w.a.admin;
    const spec = await row.build(w, { member, token, self });
    if (column.prepare && token) await column.prepare(w, token);

    const method = row.route.split(" ")[0] ?? "GET";
    const headers = { ...token?.auth, ...column.headers };
    const res = await w.ctx.req(method, spec.path, { body: spec.body, headers });
    const text = await res.text();
    // The body rides along so a wrong status shows why.
    expect({ status: res.status, body: text }).toMatchObject({ status: expected });
    const success = expected < 300;

    if (expected === 401) expect(res.headers.get("www-authenticate") ?? "").toMatch(column.challenge ?? /^$/);
    if (expected === 403) {
      expect(await deniedEntry(w, res.headers.get("x-request-id"))).toMatchObject({
        outcome: "denied",
        tenant: TENANT_A,
        target: { type: "route", id: row.route },
      });
    }
    if (success && member?.tenant === TENANT_B) {
      const hidden = [TENANT_A, ...(spec.targets ?? []), ...Object.values(w.a).flatMap((m) => [m.userId, m.apiKeyId])];
      for (const id of hidden) expect(text).not.toContain(id);
    } else if (success) {
      for (const id of spec.targets ?? []) expect(text).toContain(id);
    }
    if (spec.witness && !column.expired) {
      const revokes = success && (member?.tenant !== TENANT_B || row.own === true);
      expect(await w.accepts(spec.witness)).toBe(!revokes);
    }
  });
});
