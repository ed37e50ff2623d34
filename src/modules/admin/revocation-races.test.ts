import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin, seedUser } from "../../testing/identity";
import { AuditAction } from "../audit/actions";

/**
 * Revocations racing the logins and confirms they should stop: whatever the order in which the
 * two writes land, no credential the admin cut off yields a token that works.
 */
let ctx: TestContext;
let admin: LoggedIn;
beforeAll(async () => {
  ctx = await createTestContext();
  admin = await seedAndLogin(ctx, "race", "admin");
});
afterAll(() => ctx.close());

const asAdmin = (method: string, path: string, body?: unknown) => ctx.req(method, path, { headers: admin.auth, body });
const me = (token: string) => ctx.req("GET", "/v1/auth/me", { headers: { authorization: `Bearer ${token}` } });
const failedLoginReasons = (tenant: string) =>
  ctx.deps.db.$client
    .query("SELECT reason FROM audit_events WHERE tenant_id = ? AND action = ?")
    .all(tenant, AuditAction.loginFailed)
    .map((row) => (row as { reason: string }).reason);

describe("a login racing a revocation", () => {
  test("never yields a working token for a user disabled while the password was checked", async () => {
    const outcomes: string[] = [];
    for (const delayMs of [0, 0, 1, 2, 3, 5, 8, 13]) {
      const user = await seedUser(ctx, "race", "viewer");
      const login = ctx.req("POST", "/v1/auth/token", {
        body: { grant_type: "password", tenant: "race", username: user.email, password: user.password },
      });
      if (delayMs > 0) await Bun.sleep(delayMs);
      expect((await asAdmin("POST", `/v1/admin/users/${user.userId}/disable`)).status).toBe(200);
      const res = await login;
      if (res.status === 200) {
        // Logged in before the disable landed: the disable revoked the session it opened.
        expect((await me((await res.json()).access_token)).status).toBe(401);
        outcomes.push("revoked");
      } else {
        expect(res.status).toBe(400);
        expect((await res.json()).error).toBe("invalid_grant");
        outcomes.push("refused");
      }
      const sessions = await (await asAdmin("GET", `/v1/admin/sessions?user_id=${user.userId}`)).json();
      expect(sessions.sessions.filter((s: { revoked_at: string | null }) => s.revoked_at === null)).toEqual([]);
    }
    // The password check outlasts the shortest delays: some logins were still checking it when the
    // disable landed and were refused in their own write.
    expect(failedLoginReasons("race")).toContain("user disabled during login");
    expect(outcomes).toHaveLength(8);
  });

  test("never yields a working token for an API key revoked while it was exchanged", async () => {
    const owner = await seedUser(ctx, "race", "developer");
    for (let attempt = 0; attempt < 6; attempt++) {
      const created = await (
        await asAdmin("POST", "/v1/admin/api-keys", { name: `racing ${attempt}`, user_id: owner.userId })
      ).json();
      const exchange = ctx.req("POST", "/v1/auth/token", {
        body: { grant_type: "client_credentials", client_secret: created.api_key },
      });
      const revoke = asAdmin("DELETE", `/v1/admin/api-keys/${created.key.id}`);
      const [res, revoked] = await Promise.all([exchange, revoke]);
      expect(revoked.status).toBe(204);
      if (res.status === 200) expect((await me((await res.json()).access_token)).status).toBe(401);
      else expect((await res.json()).error).toBe("invalid_client");
    }
  });
});

describe("a bulk revocation's confirm token", () => {
  test("is used once even by confirms sent together", async () => {
    await seedAndLogin(ctx, "race", "viewer");
    const preview = await (
      await asAdmin("POST", "/v1/admin/revocations/preview", { scope: "role", role: "viewer" })
    ).json();
    const confirms = await Promise.all(
      [1, 2, 3].map(() => asAdmin("POST", "/v1/admin/revocations/confirm", { confirm_token: preview.confirm_token })),
    );
    expect(confirms.map((res) => res.status).sort()).toEqual([200, 409, 409]);
    const events = ctx.deps.db.$client
      .query("SELECT count(*) AS n FROM audit_events WHERE tenant_id = ? AND action = ?")
      .get("race", AuditAction.bulkRevocationConfirmed) as { n: number };
    expect(events.n).toBe(1);
  });

  test("is used once whatever is appended to it", async () => {
    await seedAndLogin(ctx, "suffix", "viewer");
    const preview = await (
      await asAdmin("POST", "/v1/admin/revocations/preview", { scope: "role", role: "viewer" })
    ).json();
    const token: string = preview.confirm_token;
    expect((await asAdmin("POST", "/v1/admin/revocations/confirm", { confirm_token: token })).status).toBe(200);
    // Extra dot-separated parts: not the token that was signed, so not a second use of it.
    for (const variant of [`${token}.x`, `${token}.`, `${token}..y`]) {
      const res = await asAdmin("POST", "/v1/admin/revocations/confirm", { confirm_token: variant });
      expect({ variant, status: res.status }).toEqual({ variant, status: 422 });
    }
  });
});

describe("the same change sent twice at once", () => {
  const count = (action: string, targetId: string) =>
    (
      ctx.deps.db.$client
        .query("SELECT count(*) AS n FROM audit_events WHERE action = ? AND target_id = ?")
        .get(action, targetId) as { n: number }
    ).n;

  test("disables, enables and key revocations each happen, and are audited, once", async () => {
    const user = await seedUser(ctx, "race", "viewer");
    const twice = (method: string, path: string) => Promise.all([asAdmin(method, path), asAdmin(method, path)]);
    expect((await twice("POST", `/v1/admin/users/${user.userId}/disable`)).map((r) => r.status)).toEqual([200, 200]);
    expect(count(AuditAction.userDisabled, user.userId)).toBe(1);
    expect((await twice("POST", `/v1/admin/users/${user.userId}/enable`)).map((r) => r.status)).toEqual([200, 200]);
    expect(count(AuditAction.userEnabled, user.userId)).toBe(1);
    const created = await (await asAdmin("POST", "/v1/admin/api-keys", { name: "twice", user_id: user.userId })).json();
    const revoked = await twice("DELETE", `/v1/admin/api-keys/${created.key.id}`);
    expect(revoked.map((r) => r.status)).toEqual([204, 204]);
    expect(count(AuditAction.apiKeyRevoked, created.key.id)).toBe(1);
  });
});
