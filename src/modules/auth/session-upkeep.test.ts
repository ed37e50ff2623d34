import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";

const REFRESH_TTL_SECONDS = 3600;
let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ REFRESH_TOKEN_TTL: String(REFRESH_TTL_SECONDS) });
});
afterAll(() => ctx.close());

const count = (sql: string, ...args: string[]) => (ctx.deps.db.$client.query(sql).get(...args) as { n: number }).n;

test("sessions no token can be alive for are deleted with their refresh tokens; live ones stay", async () => {
  const old = await seedAndLogin(ctx, "acme", "viewer");
  const session = (who: LoggedIn) => JSON.parse(atob(who.accessToken.split(".")[1] as string)).sid as string;
  const oldSession = session(old);
  ctx.clock.advance(REFRESH_TTL_SECONDS * 1000);
  // Expired, but its last access token may still be alive: kept.
  expect(await ctx.deps.security.sessions.purgeExpired()).toBe(0);
  ctx.clock.advance(ctx.deps.security.revocation.coverMs);
  const fresh = await seedAndLogin(ctx, "acme", "viewer");
  const purged = await ctx.deps.security.sessions.purgeExpired();
  expect(purged).toBeGreaterThanOrEqual(1);
  expect(count("SELECT count(*) AS n FROM sessions WHERE id = ?", oldSession)).toBe(0);
  expect(count("SELECT count(*) AS n FROM refresh_tokens WHERE session_id = ?", oldSession)).toBe(0);
  expect(count("SELECT count(*) AS n FROM sessions WHERE id = ?", session(fresh))).toBe(1);
  const refreshed = await ctx.req("POST", "/v1/auth/token", {
    body: { grant_type: "refresh_token", refresh_token: fresh.refreshToken },
  });
  expect(refreshed.status).toBe(200);
  // The purged session's refresh token is simply unknown now.
  const stale = await ctx.req("POST", "/v1/auth/token", {
    body: { grant_type: "refresh_token", refresh_token: old.refreshToken },
  });
  expect(((await stale.json()) as { error: string }).error).toBe("invalid_grant");
});

test("revoking a user writes cut-offs for its sessions that may have a live token, and only those", async () => {
  const user = await seedAndLogin(ctx, "acme", "developer");
  for (let i = 0; i < 3; i++) {
    await ctx.req("POST", "/v1/auth/token", {
      body: { grant_type: "password", tenant: "acme", username: user.email, password: user.password },
    });
  }
  ctx.clock.advance((REFRESH_TTL_SECONDS + 1) * 1000 + ctx.deps.security.revocation.coverMs);
  // One live session, and one expired a moment ago whose last access token still lives.
  const login = () =>
    ctx.req("POST", "/v1/auth/token", {
      body: { grant_type: "password", tenant: "acme", username: user.email, password: user.password },
    });
  await login();
  ctx.clock.advance(REFRESH_TTL_SECONDS * 1000 + 1000);
  await login();
  const admin = await seedAndLogin(ctx, "acme", "admin");
  const before = count("SELECT count(*) AS n FROM revocation_cutoffs WHERE scope = 'session'");
  const res = await ctx.req("POST", "/v1/admin/revocations", { headers: admin.auth, body: { user_id: user.userId } });
  expect(res.status).toBe(201);
  expect(count("SELECT count(*) AS n FROM revocation_cutoffs WHERE scope = 'session'")).toBe(before + 2);
});
