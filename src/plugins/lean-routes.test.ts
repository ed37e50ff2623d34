import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { t } from "elysia";
import { decodeJwt } from "jose";
import { appFetch } from "../app";
import { notFound } from "../lib/problem";
import { credentialsFor } from "../modules/admin/identity";
import { CLOCK_SKEW_SECONDS } from "../modules/auth/access-tokens";
import { createTestContext, type TestContext } from "../testing/app";
import { seedAndLogin } from "../testing/identity";
import { ADMIN, ANY_ROLE, authPlugin, DEVELOPER, type Principal } from "./auth";
import { type LeanContext, type LeanHost, lean, leanFetch, leanPost } from "./lean-routes";
import {
  type Caller,
  ORIGIN,
  PASSED_ON_CASES,
  PER_MINUTE,
  READ_CASES,
  REFILL_MS,
  WRITTEN,
  type Written,
} from "./lean-routes.cases";
import { WRITE_CASES } from "./lean-routes.write-cases";

const CASES = [...READ_CASES, ...WRITE_CASES, ...PASSED_ON_CASES];

import { JSON_OR_FORM } from "./request-guards";

/**
 * The lean path must answer exactly as Elysia does. Every case is sent once through the lean
 * path (what Bun.serve calls) and once through Elysia alone (`app.handle`), on the same app and
 * state, and must give the same status, headers (but Date, and generated request ids), body,
 * access-log lines, metric series and audit events. Cases the lean path must pass on are checked
 * to reach Elysia. The rate limiter's clock is moved one refill interval before each request, so
 * both paths see the same bucket.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const COMPARED_SERIES = /^(http_requests_total|http_request_duration_seconds_count|rate_limit_decisions_total)\{/;

interface Observed {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  logs: Record<string, unknown>[];
  metrics: Record<string, number>;
  audit: Record<string, unknown>[];
}

async function series(ctx: TestContext): Promise<Map<string, number>> {
  const text = await ctx.deps.metrics.registry.metrics();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!COMPARED_SERIES.test(line)) continue;
    const at = line.lastIndexOf(" ");
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

/** The request id a case did not choose is a fresh UUID on each path: compared as such. */
function normalise(value: unknown, generated: string | undefined): unknown {
  return JSON.parse(JSON.stringify(value ?? null), (key, v) => {
    if (generated !== undefined && v === generated) return "<generated request id>";
    // The burst before a case logs requests of its own, each with a fresh id.
    if (key === "request_id" && typeof v === "string" && UUID.test(v)) return "<another generated request id>";
    if (key === "time" || key === "duration_ms" || key === "stack") return undefined;
    return v;
  });
}

const AUDIT_IGNORED = new Set(["seq", "id", "ts", "prev_hash", "hash", "params_hash", "params"]);

function settle(): Promise<void> {
  // Elysia runs after-response hooks (access log, metrics) after the response; the audit batcher commits on its own turn.
  return Bun.sleep(5);
}

/**
 * Waits for a request's access line, written after its response (metrics are counted in the same
 * hook). A loaded machine can run that hook later than `settle` allows.
 */
async function logged(ctx: TestContext, from: number, requestId: string | null): Promise<void> {
  if (requestId === null) return;
  const seen = () => ctx.logs.slice(from).some((line) => line.msg === "request" && line.request_id === requestId);
  for (let i = 0; i < 400 && !seen(); i++) await Bun.sleep(5);
}

async function observe(
  ctx: TestContext,
  send: (request: Request) => Response | Promise<Response>,
  method: string,
  path: string,
  headers: Record<string, string>,
  before: number,
  body?: string,
  volatile = false,
): Promise<Observed> {
  await settle(); // what came before (a token grant through Elysia) has finished logging
  const logsAt = ctx.logs.length;
  const auditAt = ctx.auditEvents().length;
  const metricsAt = await series(ctx);
  const request = () => new Request(`http://localhost${path}`, { method, headers, body });
  for (let i = 0; i < before; i++) {
    const earlier = await send(request());
    expect(earlier.status).toBeLessThan(300);
    await logged(ctx, logsAt, earlier.headers.get("x-request-id"));
  }
  const response = await send(request());
  const text = await response.text();
  // A CORS preflight is answered without an access line.
  if (method !== "OPTIONS") await logged(ctx, logsAt, response.headers.get("x-request-id"));
  await settle();
  if (response.status === 403) {
    for (let i = 0; i < 100 && ctx.auditEvents().length === auditAt; i++) await Bun.sleep(5);
  }
  const requestId = response.headers.get("x-request-id") ?? undefined;
  const generated = requestId !== undefined && requestId !== headers["x-request-id"] ? requestId : undefined;
  if (generated) expect(generated).toMatch(UUID);
  const responseHeaders: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name !== "date") responseHeaders[name] = value;
  });
  const metrics: Record<string, number> = {};
  for (const [name, value] of await series(ctx)) {
    const delta = value - (metricsAt.get(name) ?? 0);
    if (delta !== 0) metrics[name] = delta;
  }
  const audit = ctx
    .auditEvents()
    .slice(auditAt)
    .map((row) => {
      const kept = Object.fromEntries(Object.entries(row).filter(([name]) => !AUDIT_IGNORED.has(name)));
      return normalise(kept, generated) as Record<string, unknown>;
    });
  let answer: unknown = text;
  try {
    answer = JSON.parse(text);
  } catch {
    // Not JSON: compared as text.
  }
  return {
    status: response.status,
    headers: normalise(responseHeaders, generated) as Record<string, string>,
    body: normalise(volatile ? withoutVolatile(answer) : answer, generated),
    logs: ctx.logs.slice(logsAt).map((line) => normalise(line, generated) as Record<string, unknown>),
    metrics,
    audit,
  };
}

const VOLATILE = new Set(["id", "expires_at", "created_at"]);

/** A real write's fresh ids and times, replaced by what they are. */
function withoutVolatile(body: unknown): unknown {
  return JSON.parse(JSON.stringify(body), (key, v) => (VOLATILE.has(key) && typeof v === "string" ? `<${key}>` : v));
}

/** X-RateLimit-Reset is an epoch second read from the wall clock: the two paths may straddle a second. */
function withoutResetSecond(observed: Observed): { reset: number | undefined; rest: Observed } {
  const { "x-ratelimit-reset": reset, ...headers } = observed.headers;
  return { reset: reset === undefined ? undefined : Number(reset), rest: { ...observed, headers } };
}

describe.each([
  ["limiter in process", true],
  ["limiter off", false],
])("the lean path answers as Elysia does, %s", (_name, limited) => {
  let ctx: TestContext;
  let front: (request: Request) => Response | Promise<Response>;
  let passedOn = 0;
  let members: Record<"viewer" | "developer" | "admin", { apiKey: string; tenant: string }>;

  const token = async (who: "viewer" | "developer" | "admin"): Promise<Caller> => {
    const res = await ctx.req("POST", "/v1/auth/token", {
      body: { grant_type: "client_credentials", client_secret: members[who].apiKey },
    });
    expect(res.status).toBe(200);
    await logged(ctx, 0, res.headers.get("x-request-id"));
    const { access_token } = (await res.json()) as { access_token: string };
    return { auth: { authorization: `Bearer ${access_token}` }, tenant: members[who].tenant };
  };

  beforeAll(async () => {
    ctx = await createTestContext({
      CORS_ORIGINS: ORIGIN,
      RATE_LIMIT_ENABLED: String(limited),
      RATE_LIMIT_PER_MINUTE: String(PER_MINUTE),
    });
    const { tokens, audit } = ctx.deps.security;
    // Lean routes the real modules do not have: a narrower role, a handler's own problem, a crash, a promise.
    const adminOnly = lean(ADMIN, (principal) => ({ admin: principal.sub }));
    const missing = lean(ANY_ROLE, () => {
      throw notFound("Nothing here.");
    });
    const crash = lean(ANY_ROLE, (): { never: true } => {
      throw new Error("boom");
    });
    const later = lean(ANY_ROLE, async (principal) => ({ later: principal.tid }));
    const written = (principal: Principal, body: Written, context: LeanContext) => {
      if (body.name === "missing") throw notFound("Nothing here.");
      if (body.name === "crash") throw new Error("boom");
      context.headers["x-written"] = body.name;
      if (body.name === "teapot") context.status = 202;
      return { name: body.name, count: body.count ?? null, by: principal.sub };
    };
    const write = leanPost(DEVELOPER, 201, written);
    const writeJson = leanPost(DEVELOPER, 201, written);
    const writeLater = leanPost(DEVELOPER, 201, async (principal, body: Written, context) =>
      written(principal, body, context),
    );
    ctx.app
      .use(authPlugin(tokens, audit))
      .get("/v1/test/lean-admin", adminOnly.handler, { auth: adminOnly.roles })
      .get("/v1/test/lean-missing", missing.handler, { auth: missing.roles })
      .get("/v1/test/lean-crash", crash.handler, { auth: crash.roles })
      .get("/v1/test/lean-async", later.handler, { auth: later.roles })
      .post("/v1/test/lean-post", write.handler, { auth: write.roles, body: WRITTEN, parse: JSON_OR_FORM })
      .post("/v1/test/lean-post-async", writeLater.handler, { auth: writeLater.roles, body: WRITTEN })
      .post("/v1/test/lean-post-json", writeJson.handler, { auth: writeJson.roles, body: WRITTEN, parse: ["json"] });
    const app = ctx.app;
    const host: LeanHost = {
      routes: app.routes,
      get server() {
        return app.server;
      },
      fetch(request) {
        passedOn++;
        return app.handle(request);
      },
    };
    front = appFetch(host, ctx.deps);
    // Something unread, so the count is not a default zero.
    const developer = await seedAndLogin(ctx, "lean-a", "developer");
    const { identity } = ctx.deps.security;
    const credentials = await credentialsFor("correct horse battery staple");
    const keyOf = (role: "viewer" | "developer" | "admin") => {
      const user = ctx.deps.db.transaction((tx) =>
        identity.createUser(tx, { tenantId: "lean-a", email: `${role}@lean.test`, role, credentials }),
      );
      const { secret } = ctx.deps.db.transaction((tx) =>
        identity.createApiKey(tx, { tenantId: "lean-a", userId: user.id, name: `lean-${role}`, role }),
      );
      return { apiKey: secret, tenant: "lean-a" };
    };
    members = { viewer: keyOf("viewer"), developer: keyOf("developer"), admin: keyOf("admin") };
    const sent = await ctx.req("POST", "/v1/notifications", {
      body: { recipients: { role: "viewer" }, type: "lean.test", title: "unread" },
      headers: developer.auth,
    });
    expect(sent.status).toBe(201);
  });
  afterAll(() => ctx?.close());

  const cases = CASES.filter((c) => limited || !c.limiterOnly).map((c) => [c.name, c] as const);

  test.each(cases)("%s", async (_caseName, c) => {
    for (const first of ["lean", "elysia"] as const) {
      const headers = (await c.headers?.(token)) ?? {};
      const method = c.method ?? "GET";
      const paths = { lean: front, elysia: (request: Request) => ctx.app.handle(request) };
      const order = first === "lean" ? (["lean", "elysia"] as const) : (["elysia", "lean"] as const);
      const seen: Partial<Record<"lean" | "elysia", Observed>> = {};
      for (const path of order) {
        // A full bucket for each path: the refill interval per request, a whole window after a burst.
        ctx.clock.advance(c.before ? 60_000 + REFILL_MS : REFILL_MS);
        const passedBefore = passedOn;
        seen[path] = await observe(ctx, paths[path], method, c.path, headers, c.before ?? 0, c.body, c.volatile);
        if (path === "lean") expect(passedOn > passedBefore).toBe(!c.lean);
      }
      const viaLean = withoutResetSecond(seen.lean as Observed);
      const viaElysia = withoutResetSecond(seen.elysia as Observed);
      expect(viaLean.rest.status).toBe(c.status);
      expect(viaLean.rest).toEqual(viaElysia.rest);
      expect(viaLean.reset === undefined).toBe(viaElysia.reset === undefined);
      if (viaLean.reset !== undefined) expect(Math.abs(viaLean.reset - (viaElysia.reset ?? 0))).toBeLessThanOrEqual(1);
      if (c.lean && c.status !== 431) expect(viaLean.rest.logs.length).toBeGreaterThan(0);
    }
  });

  test("an expired token is refused alike (last: it moves the clock past every token's expiry)", async () => {
    const caller = await token("viewer");
    expect(decodeJwt(caller.auth.authorization?.slice(7) ?? "").exp).toBeNumber();
    ctx.clock.advance((ctx.deps.config.jwt.accessTokenTtlSeconds + CLOCK_SKEW_SECONDS + 1) * 1000);
    const viaLean = await observe(ctx, front, "GET", "/v1/auth/me", caller.auth, 0);
    ctx.clock.advance(REFILL_MS);
    const viaElysia = await observe(ctx, (r) => ctx.app.handle(r), "GET", "/v1/auth/me", caller.auth, 0);
    expect(viaLean.status).toBe(401);
    expect(withoutResetSecond(viaLean).rest).toEqual(withoutResetSecond(viaElysia).rest);
    expect(viaLean.headers["www-authenticate"]).toContain("expired");
  });
});

describe("the lean path and revocation", () => {
  test("a revoked token is refused alike, on the very next request", async () => {
    const ctx = await createTestContext({ CORS_ORIGINS: ORIGIN });
    try {
      const admin = await seedAndLogin(ctx, "lean-r", "admin");
      const viewer = await seedAndLogin(ctx, "lean-r", "viewer");
      expect((await ctx.fetch(new Request("http://localhost/v1/auth/me", { headers: viewer.auth }))).status).toBe(200);
      const jti = String(decodeJwt(viewer.accessToken).jti);
      const revoked = await ctx.req("POST", "/v1/admin/revocations", { body: { jti }, headers: admin.auth });
      expect(revoked.status).toBe(201);
      const viaLean = await observe(ctx, ctx.fetch, "GET", "/v1/auth/me", viewer.auth, 0);
      ctx.clock.advance(REFILL_MS);
      const viaElysia = await observe(ctx, (r) => ctx.app.handle(r), "GET", "/v1/auth/me", viewer.auth, 0);
      expect(viaLean.status).toBe(401);
      expect(viaLean.headers["www-authenticate"]).toContain("revoked");
      expect(withoutResetSecond(viaLean).rest).toEqual(withoutResetSecond(viaElysia).rest);
    } finally {
      await ctx.close();
    }
  });
});

describe("declaring a lean route", () => {
  test("a route the lean path could not serve identically is refused when the table is built", async () => {
    const ctx = await createTestContext();
    try {
      const { tokens, audit } = ctx.deps.security;
      const withParams = lean(ANY_ROLE, () => ({}));
      ctx.app.use(authPlugin(tokens, audit)).get("/v1/test/lean/:id", withParams.handler, { auth: withParams.roles });
      const front = leanFetch(ctx.app, {
        corsOrigins: [],
        limits: { headerLimitBytes: 8192, bodyLimitBytes: 65_536 },
        log: ctx.deps.log,
        metrics: ctx.deps.metrics,
        tokens,
        audit,
        rateLimiter: undefined,
      });
      expect(() => front(new Request("http://localhost/v1/auth/me"))).toThrow(/static path/);
    } finally {
      await ctx.close();
    }
  });

  test("a lean POST whose body is not an object schema is refused when the table is built", async () => {
    const ctx = await createTestContext();
    try {
      const { tokens, audit } = ctx.deps.security;
      const text = leanPost(ANY_ROLE, 201, (_principal, body: string) => ({ body }));
      ctx.app
        .use(authPlugin(tokens, audit))
        .post("/v1/test/lean-text", text.handler, { auth: text.roles, body: t.String() });
      expect(() => ctx.fetch(new Request("http://localhost/v1/auth/me"))).toThrow(/object body schema/);
    } finally {
      await ctx.close();
    }
  });

  test("HTTP_LEAN_PATH=false hands every request to Elysia", async () => {
    const ctx = await createTestContext({ HTTP_LEAN_PATH: "false" });
    try {
      let passedOn = 0;
      const host: LeanHost = {
        routes: ctx.app.routes,
        server: null,
        fetch(request) {
          passedOn++;
          return ctx.app.handle(request);
        },
      };
      const res = await appFetch(host, ctx.deps)(new Request("http://localhost/v1/auth/me"));
      expect(res.status).toBe(401);
      expect(passedOn).toBe(1);
    } finally {
      await ctx.close();
    }
  });
});
