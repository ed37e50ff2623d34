import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt } from "jose";
import { createTestContext, type TestContext } from "../../testing/app";
import { contextWithAdmin, type LoggedIn, seedAndLogin } from "../../testing/identity";

let ctx: TestContext;
let admin: LoggedIn;
beforeAll(async () => {
  ({ ctx, admin } = await contextWithAdmin());
});
afterAll(() => ctx.close());

const asAdmin = (method: string, path: string, body?: unknown, who: LoggedIn = admin) =>
  ctx.req(method, path, { headers: who.auth, body });
const me = (user: LoggedIn) => ctx.req("GET", "/v1/auth/me", { headers: user.auth });

describe("POST /v1/admin/revocations", () => {
  test("by jti should revoke exactly that token on the next request", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const jti = String(decodeJwt(user.accessToken).jti);
    const res = await asAdmin("POST", "/v1/admin/revocations", { jti });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ kind: "token", id: jti });
    expect((await me(user)).status).toBe(401);
  });

  test("by user should revoke every token the user holds and their refresh tokens", async () => {
    const user = await seedAndLogin(ctx, "acme", "developer");
    expect((await asAdmin("POST", "/v1/admin/revocations", { user_id: user.userId })).status).toBe(201);
    expect((await me(user)).status).toBe(401);
    const refresh = await ctx.req("POST", "/v1/auth/token", {
      body: { grant_type: "refresh_token", refresh_token: user.refreshToken },
    });
    expect(refresh.status).toBe(400);
  });

  test("by session should revoke that session only", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const sid = String(decodeJwt(user.accessToken).sid);
    expect((await asAdmin("POST", "/v1/admin/revocations", { session_id: sid })).status).toBe(201);
    expect((await me(user)).status).toBe(401);
    expect((await me(admin)).status).toBe(200);
  });

  test("should not reach another tenant's users or sessions", async () => {
    const victim = await seedAndLogin(ctx, "globex", "admin");
    const sid = String(decodeJwt(victim.accessToken).sid);
    // As ids that do not exist: a 422 naming the field (in a body, not a path).
    for (const [field, body] of [
      ["user_id", { user_id: victim.userId }],
      ["session_id", { session_id: sid }],
    ] as const) {
      const res = await asAdmin("POST", "/v1/admin/revocations", body);
      expect(res.status).toBe(422);
      expect((await res.json()).errors[0].field).toBe(field);
    }
    expect((await me(victim)).status).toBe(200);
    // A jti is recorded for the revoking tenant only, so it cannot touch another tenant's token.
    const jti = String(decodeJwt(victim.accessToken).jti);
    expect((await asAdmin("POST", "/v1/admin/revocations", { jti })).status).toBe(201);
    expect((await me(victim)).status).toBe(200);
  });

  test.each([[{}], [{ jti: "a", user_id: "b" }], [{ jti: "" }], [{ tenant: "acme" }]])(
    "should reject %j",
    async (body) => {
      const res = await asAdmin("POST", "/v1/admin/revocations", body);
      expect(res.status).toBe(422);
    },
  );
});

describe("GET /v1/admin/revocations", () => {
  test("should page through this tenant's revocations, newest first, without duplicates", async () => {
    const fresh = await createTestContext();
    try {
      const owner = await seedAndLogin(fresh, "acme", "admin");
      // The longest jti there may be, with the cursor's own separator in it, ends a page.
      const long = `jti-2|${"x".repeat(122)}`;
      const jtis = ["jti-0", "jti-1", long, "jti-3", "jti-4"];
      for (const jti of jtis) {
        fresh.clock.advance(1000);
        await fresh.req("POST", "/v1/admin/revocations", { headers: owner.auth, body: { jti } });
      }
      const other = await seedAndLogin(fresh, "globex", "admin");
      await fresh.req("POST", "/v1/admin/revocations", { headers: other.auth, body: { jti: "globex-secret" } });
      const seen: string[] = [];
      let cursor: string | null = "";
      while (cursor !== null) {
        const res = await fresh.req("GET", `/v1/admin/revocations?limit=3${cursor ? `&cursor=${cursor}` : ""}`, {
          headers: owner.auth,
        });
        expect(res.status).toBe(200);
        const page: { revocations: { subject: string }[]; next_cursor: string | null } = await res.json();
        seen.push(...page.revocations.map((r) => r.subject));
        cursor = page.next_cursor;
      }
      expect(seen).toEqual(jtis.toReversed());
      // Not percent-encoding at all is a malformed query (400); not a cursor, a 422: both name it.
      for (const [garbage, status] of [
        ["%%%", 400],
        ["garbage", 422],
      ] as const) {
        const bad = await fresh.req("GET", `/v1/admin/revocations?cursor=${garbage}`, { headers: owner.auth });
        expect(bad.status).toBe(status);
        expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe("cursor");
      }
    } finally {
      await fresh.close();
    }
  });
});

describe("bulk revocation", () => {
  test("a role: preview counts, then confirm revokes that role only", async () => {
    const viewers = [await seedAndLogin(ctx, "acme", "viewer"), await seedAndLogin(ctx, "acme", "viewer")];
    const developer = await seedAndLogin(ctx, "acme", "developer");
    const preview = await asAdmin("POST", "/v1/admin/revocations/preview", { scope: "role", role: "viewer" });
    expect(preview.status).toBe(200);
    const body = await preview.json();
    expect(body.affected.sessions).toBeGreaterThanOrEqual(2);
    expect(body.affected.users).toBeGreaterThanOrEqual(2);
    for (const viewer of viewers) expect((await me(viewer)).status).toBe(200);

    const confirm = await asAdmin("POST", "/v1/admin/revocations/confirm", { confirm_token: body.confirm_token });
    expect(confirm.status).toBe(200);
    expect((await confirm.json()).revoked.sessions).toBe(body.affected.sessions);
    for (const viewer of viewers) expect((await me(viewer)).status).toBe(401);
    expect((await me(developer)).status).toBe(200);
    expect((await me(admin)).status).toBe(200);
    // Single use: a replay of the same confirm token is refused, even within its five minutes.
    const replay = await asAdmin("POST", "/v1/admin/revocations/confirm", { confirm_token: body.confirm_token });
    expect(replay.status).toBe(409);
  });

  test("a confirm token should be bound to its admin, tenant and five minutes", async () => {
    const { confirm_token } = await (
      await asAdmin("POST", "/v1/admin/revocations/preview", { scope: "tenant" })
    ).json();
    const otherAdmin = await seedAndLogin(ctx, "acme", "admin");
    expect((await asAdmin("POST", "/v1/admin/revocations/confirm", { confirm_token }, otherAdmin)).status).toBe(422);
    // A different last hex digit, whatever it was ("…00" left one in 256 tokens as they were).
    const tampered = `${confirm_token.slice(0, -1)}${confirm_token.endsWith("0") ? "1" : "0"}`;
    expect((await asAdmin("POST", "/v1/admin/revocations/confirm", { confirm_token: tampered })).status).toBe(422);
    expect((await asAdmin("POST", "/v1/admin/revocations/preview", { scope: "role" })).status).toBe(422);
  });

  test("a role sent with scope tenant is refused, naming role, rather than read as the whole tenant", async () => {
    const res = await asAdmin("POST", "/v1/admin/revocations/preview", { scope: "tenant", role: "viewer" });
    expect(res.status).toBe(422);
    const problem = (await res.json()) as { errors: { field: string }[]; detail: string };
    expect(problem.errors.map((e) => e.field)).toEqual(["role"]);
    expect(problem.detail).toContain('scope "role"');
  });

  test("a tenant: confirm revokes everyone in it, the confirming admin too, and no other tenant", async () => {
    const fresh = await createTestContext();
    try {
      const owner = await seedAndLogin(fresh, "acme", "admin");
      const member = await seedAndLogin(fresh, "acme", "viewer");
      const outsider = await seedAndLogin(fresh, "globex", "viewer");
      const preview = await (
        await fresh.req("POST", "/v1/admin/revocations/preview", { headers: owner.auth, body: { scope: "tenant" } })
      ).json();
      fresh.clock.advance(4 * 60_000);
      const res = await fresh.req("POST", "/v1/admin/revocations/confirm", {
        headers: owner.auth,
        body: { confirm_token: preview.confirm_token },
      });
      expect(res.status).toBe(200);
      for (const user of [owner, member]) {
        expect((await fresh.req("GET", "/v1/auth/me", { headers: user.auth })).status).toBe(401);
      }
      expect((await fresh.req("GET", "/v1/auth/me", { headers: outsider.auth })).status).toBe(200);
      // A new login after the cut-off works, even within the same second.
      const again = await seedAndLogin(fresh, "acme", "viewer");
      expect((await fresh.req("GET", "/v1/auth/me", { headers: again.auth })).status).toBe(200);
    } finally {
      await fresh.close();
    }
  });

  test("an expired confirm token should be refused", async () => {
    const fresh = await createTestContext();
    try {
      const owner = await seedAndLogin(fresh, "acme", "admin");
      const { confirm_token } = await (
        await fresh.req("POST", "/v1/admin/revocations/preview", { headers: owner.auth, body: { scope: "tenant" } })
      ).json();
      fresh.clock.advance(5 * 60_000 + 1);
      const res = await fresh.req("POST", "/v1/admin/revocations/confirm", {
        headers: owner.auth,
        body: { confirm_token },
      });
      expect(res.status).toBe(422);
      expect((await fresh.req("GET", "/v1/auth/me", { headers: owner.auth })).status).toBe(200);
    } finally {
      await fresh.close();
    }
  });
});
