import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { formRequest, seedAndLogin, tokenRequest } from "../../testing/identity";

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(() => ctx.close());

const form = formRequest;
const token = (body: Record<string, string>) => tokenRequest(ctx, body);

/** POST /v1/auth/revoke (RFC 7009): 200 whatever the token, and a revocation only where one is due. */
describe("token revocation", () => {
  test("RFC 7009 revoke without a token should be 400 invalid_request", async () => {
    const res = await ctx.req("POST", "/v1/auth/revoke", { body: {} });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_request" });
  });

  test("RFC 7009 revoke should be 200 for unknown tokens and idempotent", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const revocations = () => ctx.auditEvents("token.revoke").filter((e) => e.target_type === "token").length;
    const before = revocations();
    for (const value of ["garbage", "wrt_unknown", user.accessToken, user.accessToken, user.accessToken]) {
      const res = await ctx.req("POST", "/v1/auth/revoke", { body: { token: value, token_type_hint: "access_token" } });
      expect(res.status).toBe(200);
    }
    expect((await ctx.req("GET", "/v1/auth/me", { headers: user.auth })).status).toBe(401);
    // Revoked once: the repeats change nothing, and the trail says so once.
    expect(revocations()).toBe(before + 1);
    // The refresh token of the same session still works: revoking one access token is that narrow.
    expect((await token({ grant_type: "refresh_token", refresh_token: user.refreshToken })).status).toBe(200);
  });

  test("RFC 7009 revoke of an expired access token should be 200 and write nothing", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const revocations = () => ctx.auditEvents("token.revoke").length;
    const before = revocations();
    const rows = () => ctx.deps.db.$client.query("SELECT count(*) AS n FROM revoked_tokens").get() as { n: number };
    const rowsBefore = rows().n;
    // Past its expiry and the skew every check allows: no request can use it, so there is nothing to revoke.
    ctx.clock.advance(16 * 60_000);
    for (let i = 0; i < 3; i++) {
      const res = await ctx.req("POST", "/v1/auth/revoke", { body: { token: user.accessToken } });
      expect(res.status).toBe(200);
    }
    expect(revocations()).toBe(before);
    expect(rows().n).toBe(rowsBefore);
  });

  test("revoking a refresh token should end its whole session", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const res = await ctx.req(
      "POST",
      "/v1/auth/revoke",
      form({ token: user.refreshToken, token_type_hint: "refresh_token" }),
    );
    expect(res.status).toBe(200);
    expect((await ctx.req("GET", "/v1/auth/me", { headers: user.auth })).status).toBe(401);
  });
});
