import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Role } from "../../../db/schema";
import { createWorld, type Member, TENANT_A, TENANT_B, type Token, type World } from "../../testing/matrix";
import { PUBLIC, type Row, rows, SKEW_SECONDS } from "./access-matrix.rows";

// Every protected route × every kind of caller → the status DESIGN.md §4–§5 promises.

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
