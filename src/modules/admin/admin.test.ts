import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TestContext } from "../../testing/app";
import { contextWithAdmin, type LoggedIn, login, seedAndLogin, seedUser } from "../../testing/identity";
import { AdminService } from "./service";

let ctx: TestContext;
let admin: LoggedIn;
beforeAll(async () => {
  ({ ctx, admin } = await contextWithAdmin());
});
afterAll(() => ctx.close());

const asAdmin = (method: string, path: string, body?: unknown) => ctx.req(method, path, { headers: admin.auth, body });

describe("users", () => {
  test("should create a user with a generated password shown once, who can then log in", async () => {
    const res = await asAdmin("POST", "/v1/admin/users", { email: "New.Person@acme.test", role: "developer" });
    expect(res.status).toBe(201);
    const { user, password } = await res.json();
    expect(user).toMatchObject({
      email: "new.person@acme.test",
      role: "developer",
      tenant_id: "acme",
      disabled_at: null,
    });
    expect(password).toHaveLength(24);
    expect(JSON.stringify(user)).not.toContain("argon2");
    const loggedIn = await login(ctx, {
      tenant: "acme",
      userId: user.id,
      email: user.email,
      role: "developer",
      password,
    });
    expect(loggedIn.accessToken).toBeTruthy();
  });

  test("should not echo a chosen password", async () => {
    const res = await asAdmin("POST", "/v1/admin/users", {
      email: "chosen@acme.test",
      role: "viewer",
      password: "a long chosen password",
    });
    expect(res.status).toBe(201);
    expect((await res.json()).password).toBeUndefined();
  });

  test("should answer a duplicate email with 409 and keep the original", async () => {
    await asAdmin("POST", "/v1/admin/users", { email: "dup@acme.test", role: "viewer" });
    const again = await asAdmin("POST", "/v1/admin/users", { email: "DUP@acme.test", role: "admin" });
    expect(again.status).toBe(409);
    const users = (await (await asAdmin("GET", "/v1/admin/users?limit=200")).json()).users;
    expect(users.filter((u: { email: string }) => u.email === "dup@acme.test")).toEqual([
      expect.objectContaining({ role: "viewer" }),
    ]);
  });

  test.each([
    [{ email: "not-an-email", role: "viewer" }, "email"],
    [{ email: "x@acme.test", role: "owner" }, "role"],
    [{ email: "x@acme.test", role: "viewer", password: "short" }, "password"],
    [{ role: "viewer" }, "email"],
  ])("should reject %j naming %s", async (body, field) => {
    const res = await asAdmin("POST", "/v1/admin/users", body);
    expect(res.status).toBe(422);
    const problem = await res.json();
    expect(problem.errors.map((e: { field: string }) => e.field)).toContain(field);
  });

  test("should page through users newest first", async () => {
    for (let i = 0; i < 5; i++) await seedUser(ctx, "acme", "viewer");
    const seen: string[] = [];
    let cursor: string | null = "";
    while (cursor !== null) {
      const page: { users: { id: string }[]; next_cursor: string | null } = await (
        await asAdmin("GET", `/v1/admin/users?limit=2${cursor ? `&cursor=${cursor}` : ""}`)
      ).json();
      expect(page.users.length).toBeLessThanOrEqual(2);
      seen.push(...page.users.map((u) => u.id));
      cursor = page.next_cursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort().reverse()).toEqual(seen);
    expect(seen.length).toBeGreaterThanOrEqual(6);
  });

  test("disabling a user should revoke their tokens; enabling lets them log in again", async () => {
    const seeded = await seedUser(ctx, "acme", "developer");
    const user = await login(ctx, seeded);
    const disabled = await asAdmin("POST", `/v1/admin/users/${user.userId}/disable`);
    expect((await disabled.json()).disabled_at).not.toBeNull();
    expect((await ctx.req("GET", "/v1/auth/me", { headers: user.auth })).status).toBe(401);
    // No key for a disabled user: every exchange of it would fail.
    const key = await asAdmin("POST", "/v1/admin/api-keys", { user_id: user.userId, name: "dead" });
    expect(key.status).toBe(409);
    expect((await key.json()).errors[0]).toMatchObject({ in: "body", field: "user_id" });
    await asAdmin("POST", `/v1/admin/users/${user.userId}/enable`);
    expect((await asAdmin("POST", "/v1/admin/api-keys", { user_id: user.userId, name: "live" })).status).toBe(201);
    const again = await login(ctx, seeded);
    expect((await ctx.req("GET", "/v1/auth/me", { headers: again.auth })).status).toBe(200);
  });
});

describe("user list", () => {
  test("a cursor that is not one the list returned is a 422 naming it, not the first page", async () => {
    for (const garbage of ["zzzz", "%25%25%25"]) {
      const res = await asAdmin("GET", `/v1/admin/users?cursor=${garbage}`);
      expect(res.status).toBe(422);
      expect((await res.json()).errors[0]).toMatchObject({ in: "query", field: "cursor" });
    }
    const first = await (await asAdmin("GET", "/v1/admin/users?limit=1")).json();
    const next = await asAdmin("GET", `/v1/admin/users?limit=1&cursor=${first.next_cursor}`);
    expect(next.status).toBe(200);
  });
});

describe("self-protection", () => {
  test("an admin should not be able to disable their own account", async () => {
    const res = await asAdmin("POST", `/v1/admin/users/${admin.userId}/disable`);
    expect(res.status).toBe(409);
    expect((await ctx.req("GET", "/v1/auth/me", { headers: admin.auth })).status).toBe(200);
  });

  test("two admins disabling each other at once leave one of them enabled", async () => {
    for (let round = 0; round < 4; round++) {
      const tenant = `mutual-${round}`;
      const [a, b] = [await seedAndLogin(ctx, tenant, "admin"), await seedAndLogin(ctx, tenant, "admin")];
      const disable = (by: LoggedIn, whom: LoggedIn) =>
        ctx.req("POST", `/v1/admin/users/${whom.userId}/disable`, { headers: by.auth });
      const statuses = (await Promise.all([disable(a, b), disable(b, a)])).map((res) => res.status).sort();
      // Both passed their token check before either write landed, or the second was refused there.
      expect([
        [200, 401],
        [200, 403],
      ]).toContainEqual(statuses);
      const enabled = ctx.deps.db.$client
        .query<{ n: number }, [string]>("SELECT count(*) AS n FROM users WHERE tenant_id = ? AND disabled_at IS NULL")
        .get(tenant)?.n;
      expect(enabled).toBe(1);
    }
  });

  test("an admin disabled after its token was checked changes nothing", async () => {
    const [a, b] = [await seedAndLogin(ctx, "late", "admin"), await seedAndLogin(ctx, "late", "admin")];
    const target = await seedUser(ctx, "late", "viewer");
    // b's request is past its token check (the principal in hand) when a's disable of b lands.
    const principalB = await ctx.deps.security.tokens.verify(b.accessToken);
    expect((await ctx.req("POST", `/v1/admin/users/${b.userId}/disable`, { headers: a.auth })).status).toBe(200);
    const admin = new AdminService(ctx.deps.db, ctx.deps.clock, ctx.deps.security);
    const meta = { ip: null, userAgent: null, requestId: "late" };
    for (const [whom, disabled] of [
      [a.userId, true],
      [target.userId, true],
    ] as const) {
      await expect(admin.setUserDisabled(principalB, whom, disabled, meta)).rejects.toMatchObject({
        status: 403,
        slug: "caller-disabled",
      });
    }
    const disabledNow = ctx.deps.db.$client
      .query<{ id: string }, []>("SELECT id FROM users WHERE disabled_at IS NOT NULL")
      .all()
      .map((row) => row.id);
    expect(disabledNow).toContain(b.userId);
    expect(disabledNow).not.toContain(a.userId);
    expect(disabledNow).not.toContain(target.userId);
    const denials = ctx.deps.db.$client
      .query<{ target_id: string; reason: string }, [string]>(
        "SELECT target_id, reason FROM audit_events WHERE action = 'access.denied' AND tenant_id = ?",
      )
      .all("late");
    expect(denials.map((row) => row.target_id).sort()).toEqual([a.userId, target.userId].sort());
    expect(denials[0]?.reason).toContain("disabled while this request ran");
  });
});

describe("API keys", () => {
  test("should refuse a key with more power than its owner", async () => {
    const viewer = await seedUser(ctx, "acme", "viewer");
    const res = await asAdmin("POST", "/v1/admin/api-keys", {
      name: "too much",
      role: "admin",
      user_id: viewer.userId,
    });
    expect(res.status).toBe(422);
    expect((await res.json()).errors[0].field).toBe("role");
  });

  test("revoking a key should revoke the sessions opened with it", async () => {
    const { api_key, key } = await (await asAdmin("POST", "/v1/admin/api-keys", { name: "robot" })).json();
    const exchanged = await ctx.req("POST", "/v1/auth/token", {
      body: { grant_type: "client_credentials", client_secret: api_key },
    });
    const { access_token, refresh_token } = await exchanged.json();
    expect((await asAdmin("DELETE", `/v1/admin/api-keys/${key.id}`)).status).toBe(204);
    expect((await asAdmin("DELETE", `/v1/admin/api-keys/${key.id}`)).status).toBe(204);
    expect(ctx.auditEvents("apikey.revoke").filter((event) => event.target_id === key.id)).toHaveLength(1);
    expect((await ctx.req("GET", "/v1/auth/me", { headers: { authorization: `Bearer ${access_token}` } })).status).toBe(
      401,
    );
    const refresh = await ctx.req("POST", "/v1/auth/token", { body: { grant_type: "refresh_token", refresh_token } });
    expect(refresh.status).toBe(400);
  });
});

describe("admin sessions view", () => {
  test("should list a user's live sessions", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const res = await asAdmin("GET", `/v1/admin/sessions?user_id=${user.userId}`);
    expect(res.status).toBe(200);
    expect((await res.json()).sessions).toHaveLength(1);
    // An unknown user, or another tenant's, lists nothing, as any filter does.
    const nobody = await asAdmin("GET", "/v1/admin/sessions?user_id=nobody");
    expect(nobody.status).toBe(200);
    expect((await nobody.json()).sessions).toEqual([]);
    const outsider = await seedAndLogin(ctx, "globex", "viewer");
    expect((await (await asAdmin("GET", `/v1/admin/sessions?user_id=${outsider.userId}`)).json()).sessions).toEqual([]);
    expect((await asAdmin("GET", "/v1/admin/sessions")).status).toBe(422);
  });
});

describe("references and repeats", () => {
  test("a key for a user this tenant does not have is a 422 naming user_id", async () => {
    const stranger = await seedUser(ctx, "elsewhere", "developer");
    for (const userId of ["nope", stranger.userId]) {
      const res = await asAdmin("POST", "/v1/admin/api-keys", { name: "k", user_id: userId });
      expect(res.status).toBe(422);
      expect((await res.json()).errors.map((e: { field: string }) => e.field)).toEqual(["user_id"]);
    }
  });

  test("disabling a disabled user, or enabling an enabled one, changes nothing and audits nothing", async () => {
    const user = await seedUser(ctx, "acme", "viewer");
    const events = () =>
      ctx.auditEvents().filter((event) => event.target_id === user.userId && event.action.startsWith("user.")).length;
    expect((await asAdmin("POST", `/v1/admin/users/${user.userId}/enable`)).status).toBe(200);
    expect(events()).toBe(0);
    const first = await (await asAdmin("POST", `/v1/admin/users/${user.userId}/disable`)).json();
    const again = await asAdmin("POST", `/v1/admin/users/${user.userId}/disable`);
    expect(again.status).toBe(200);
    expect((await again.json()).disabled_at).toBe(first.disabled_at);
    expect(events()).toBe(1);
  });
});

describe("listing API keys", () => {
  test("pages newest first, filters by user, and refuses a cursor it did not hand out", async () => {
    const owner = await seedUser(ctx, "acme", "developer");
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await asAdmin("POST", "/v1/admin/api-keys", { name: `paged ${i}`, user_id: owner.userId });
      made.push((await res.json()).key.id);
    }
    const seen: string[] = [];
    let cursor: string | null = "";
    for (let pages = 0; cursor !== null; pages++) {
      expect(pages).toBeLessThan(5);
      const page = (await (
        await asAdmin("GET", `/v1/admin/api-keys?user_id=${owner.userId}&limit=2${cursor ? `&cursor=${cursor}` : ""}`)
      ).json()) as { api_keys: { id: string; user_id: string }[]; next_cursor: string | null };
      expect(page.api_keys.length).toBeLessThanOrEqual(2);
      expect(page.api_keys.every((k: { user_id: string }) => k.user_id === owner.userId)).toBe(true);
      seen.push(...page.api_keys.map((k: { id: string }) => k.id));
      cursor = page.next_cursor;
    }
    // Keys made in one millisecond are told apart by id, so the same set comes back, each once.
    expect(seen.sort()).toEqual([...made].sort());
    const all = await (await asAdmin("GET", "/v1/admin/api-keys?limit=200")).json();
    expect(all.api_keys.length).toBeGreaterThan(5);
    for (const [query, field] of [
      ["?cursor=0000000000000000", "cursor"],
      ["?cursor=NOT-A-KEY", "cursor"],
      ["?limit=0", "limit"],
    ] as const) {
      const res = await asAdmin("GET", `/v1/admin/api-keys${query}`);
      expect(res.status).toBe(422);
      expect((await res.json()).errors.map((e: { field: string }) => e.field)).toContain(field);
    }
  });
});
