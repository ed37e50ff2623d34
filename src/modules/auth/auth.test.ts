import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { createTestContext, type TestContext } from "../../testing/app";
import { formRequest, login, seedAndLogin, seedUser, tokenRequest } from "../../testing/identity";

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(() => ctx.close());

const form = formRequest;
const token = (body: Record<string, string>, asForm = false) => tokenRequest(ctx, body, asForm);

describe("POST /v1/auth/token", () => {
  test("should issue an Ed25519 at+jwt with every claim for the password grant", async () => {
    const user = await seedUser(ctx, "acme", "developer");
    const res = await token({ grant_type: "password", tenant: "acme", username: user.email, password: user.password });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await res.json();
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 900 });
    expect(body.refresh_token).toStartWith("wrt_");
    expect(decodeProtectedHeader(body.access_token)).toMatchObject({ alg: "EdDSA", typ: "at+jwt" });
    const claims = decodeJwt(body.access_token);
    expect(claims).toMatchObject({
      iss: "warden",
      aud: "warden-api",
      sub: user.userId,
      tid: "acme",
      role: "developer",
    });
    for (const claim of ["sid", "jti", "iat", "exp"]) expect(claims[claim]).toBeDefined();
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(900);
  });

  test("should accept a form-encoded body and an upper-case email", async () => {
    const user = await seedUser(ctx, "acme", "viewer");
    const res = await token(
      { grant_type: "password", tenant: "acme", username: user.email.toUpperCase(), password: user.password },
      true,
    );
    expect(res.status).toBe(200);
  });

  test("should refuse every bad login with the same answer (no user enumeration)", async () => {
    const user = await seedUser(ctx, "acme", "viewer");
    const attempts = [
      { tenant: "acme", username: user.email, password: "wrong password" },
      { tenant: "acme", username: "nobody@acme.test", password: user.password },
      { tenant: "other", username: user.email, password: user.password },
      { tenant: "NOT A SLUG", username: user.email, password: user.password },
    ];
    const answers = [];
    for (const attempt of attempts) {
      const res = await token({ grant_type: "password", ...attempt });
      expect(res.status).toBe(400);
      const body = await res.json();
      answers.push([body.error, body.error_description, body.type]);
    }
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]?.[0]).toBe("invalid_grant");
    const failures = ctx.auditEvents("auth.login_failed");
    expect(failures.length).toBeGreaterThanOrEqual(4);
    expect(failures.map((event) => event.outcome)).toEqual(failures.map(() => "failure"));
    expect(failures.some((event) => JSON.parse(event.params).username === user.email)).toBe(true);
    expect(JSON.stringify(failures)).not.toContain(user.password);
    expect(JSON.stringify(ctx.logs)).not.toContain(user.password);
  });

  test("should refuse a disabled user", async () => {
    const admin = await seedAndLogin(ctx, "acme", "admin");
    const user = await seedUser(ctx, "acme", "viewer");
    expect((await ctx.req("POST", `/v1/admin/users/${user.userId}/disable`, { headers: admin.auth })).status).toBe(200);
    const res = await token({ grant_type: "password", tenant: "acme", username: user.email, password: user.password });
    expect((await res.json()).error).toBe("invalid_grant");
  });

  test.each([
    [{ grant_type: "password", tenant: "acme", username: "a@acme.test" }, "invalid_request", "password"],
    [{ grant_type: "client_credentials" }, "invalid_request", "client_secret"],
    [{ grant_type: "refresh_token" }, "invalid_request", "refresh_token"],
    [{ grant_type: "authorization_code", code: "x" }, "unsupported_grant_type", "grant_type"],
    [{ username: "a@acme.test" }, "invalid_request", "grant_type"],
    [{}, "invalid_request", "grant_type"],
  ])("should answer %j with %s naming %s", async (body, error, field) => {
    const res = await token(body as Record<string, string>);
    expect(res.status).toBe(400);
    const problem = await res.json();
    expect(problem.error).toBe(error);
    expect(problem.error_description).toContain(field);
    expect(res.headers.get("content-type")).toBe("application/json");
  });

  test.each([["[]"], ['[{"grant_type":"password"}]'], ["null"], ["1"]])(
    "should answer a body %s that is no object of parameters with invalid_request saying so",
    async (body) => {
      const res = await ctx.req("POST", "/v1/auth/token", { headers: { "content-type": "application/json" }, body });
      expect(res.status).toBe(400);
      const problem = await res.json();
      expect(problem.error).toBe("invalid_request");
      expect(problem.error_description).toMatch(/(must be an object of parameters|as a whole: Expected object)/);
    },
  );

  test("should exchange an API key for tokens (client_credentials)", async () => {
    const admin = await seedAndLogin(ctx, "acme", "admin");
    const created = await ctx.req("POST", "/v1/admin/api-keys", {
      headers: admin.auth,
      body: { name: "ci", role: "developer" },
    });
    expect(created.status).toBe(201);
    const { api_key, key } = await created.json();
    expect(api_key).toMatch(/^wdn_[0-9a-z]{16}_[A-Za-z0-9_-]{43}$/);
    const res = await token({ grant_type: "client_credentials", client_secret: api_key }, true);
    expect(res.status).toBe(200);
    const exchanged = await res.json();
    const claims = decodeJwt(exchanged.access_token);
    // RFC 9068's client_id names the key, on the first token and on every refreshed one.
    expect(claims).toMatchObject({ tid: "acme", role: "developer", sub: admin.userId, client_id: key.id });
    const refreshed = await (
      await token({ grant_type: "refresh_token", refresh_token: exchanged.refresh_token }, true)
    ).json();
    expect(decodeJwt(refreshed.access_token).client_id).toBe(key.id);
    // What is done with the key is the key's doing in the trail, not its owner's.
    const viaKey = { authorization: `Bearer ${refreshed.access_token}` };
    expect((await ctx.req("POST", "/v1/auth/logout", { headers: viaKey })).status).toBe(204);
    const loggedOut = ctx
      .auditEvents("auth.logout")
      .find((event) => event.target_id === decodeJwt(refreshed.access_token).sid);
    expect(loggedOut).toMatchObject({ actor_type: "api_key", actor_id: key.id });
    expect(decodeJwt(admin.accessToken).client_id).toBeUndefined();
    const listed = await (await ctx.req("GET", "/v1/admin/api-keys", { headers: admin.auth })).json();
    const stored = listed.api_keys.find((k: { id: string }) => k.id === key.id);
    expect(stored.last_used_at).not.toBeNull();
    // The whole secret: it is base64url, so it may itself contain "_".
    const secret = api_key.slice(api_key.indexOf("_", "wdn_".length) + 1);
    expect(secret.length).toBeGreaterThan(20);
    expect(JSON.stringify(listed)).not.toContain(secret);

    const wrong = `${api_key.slice(0, -1)}${api_key.endsWith("A") ? "B" : "A"}`;
    expect((await (await token({ grant_type: "client_credentials", client_secret: wrong })).json()).error).toBe(
      "invalid_client",
    );
    expect((await ctx.req("DELETE", `/v1/admin/api-keys/${key.id}`, { headers: admin.auth })).status).toBe(204);
    expect((await (await token({ grant_type: "client_credentials", client_secret: api_key })).json()).error).toBe(
      "invalid_client",
    );
    // Both failed attempts (wrong secret, revoked key) are visible to the key's tenant.
    const failures = ctx.auditEvents("auth.login_failed").filter((event) => event.target_id === key.id);
    expect(failures).toHaveLength(2);
    expect(failures.every((event) => event.tenant_id === "acme" && event.target_type === "api_key")).toBe(true);
  });
});

describe("client_secret_basic", () => {
  test("should accept the API key in an HTTP Basic header, whole or as its secret part", async () => {
    const admin = await seedAndLogin(ctx, "acme", "admin");
    const { api_key, key } = await (
      await ctx.req("POST", "/v1/admin/api-keys", { headers: admin.auth, body: { name: "basic", role: "viewer" } })
    ).json();
    const secretPart = api_key.slice(`wdn_${key.id}_`.length);
    // The whole key names its client: no user name at all (`curl -u ":wdn_…"`) will do.
    for (const credentials of [`${key.id}:${api_key}`, `${key.id}:${secretPart}`, `:${api_key}`]) {
      const res = await ctx.req("POST", "/v1/auth/token", {
        ...form({ grant_type: "client_credentials" }),
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: `Basic ${Buffer.from(credentials).toString("base64")}`,
        },
      });
      expect(res.status).toBe(200);
      expect(decodeJwt((await res.json()).access_token).role).toBe("viewer");
    }
    const wrong = await ctx.req("POST", "/v1/auth/token", {
      body: "grant_type=client_credentials",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${key.id}:nope`).toString("base64")}`,
      },
    });
    // RFC 6749 §5.2: the client authenticated through the Authorization header, so 401 and a challenge.
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe('Basic realm="warden"');
    expect((await wrong.json()).error).toBe("invalid_client");
    for (const garbage of ["bm9jb2xvbg==", Buffer.from("%E0%A4%A:x").toString("base64")]) {
      const res = await ctx.req("POST", "/v1/auth/token", {
        body: "grant_type=client_credentials",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${garbage}` },
      });
      expect(res.status).toBe(401);
      expect((await res.json()).error).toBe("invalid_client");
    }
  });
});

describe("refresh tokens", () => {
  test("should rotate on every use and revoke the session when an old one comes back", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const first = await token({ grant_type: "refresh_token", refresh_token: user.refreshToken });
    expect(first.status).toBe(200);
    const rotated = await first.json();
    expect(rotated.refresh_token).not.toBe(user.refreshToken);
    expect(
      (await ctx.req("GET", "/v1/auth/me", { headers: { authorization: `Bearer ${rotated.access_token}` } })).status,
    ).toBe(200);

    const reuse = await token({ grant_type: "refresh_token", refresh_token: user.refreshToken });
    expect(reuse.status).toBe(400);
    expect((await reuse.json()).error_description).toContain("already used");
    // The whole session is gone: its newest access and refresh tokens too.
    const me = await ctx.req("GET", "/v1/auth/me", { headers: { authorization: `Bearer ${rotated.access_token}` } });
    expect(me.status).toBe(401);
    expect((await token({ grant_type: "refresh_token", refresh_token: rotated.refresh_token })).status).toBe(400);
    expect(ctx.auditEvents("token.refresh_reuse")).toEqual([
      expect.objectContaining({ outcome: "denied", target_type: "session" }),
    ]);
  });

  test("should let only one of two racing refreshes win", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const [a, b] = await Promise.all([
      token({ grant_type: "refresh_token", refresh_token: user.refreshToken }),
      token({ grant_type: "refresh_token", refresh_token: user.refreshToken }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 400]);
  });

  test("should refuse an unknown refresh token", async () => {
    const res = await token({ grant_type: "refresh_token", refresh_token: "wrt_nope" });
    expect((await res.json()).error).toBe("invalid_grant");
  });
});

describe("logout, revoke and sessions", () => {
  test("logout should revoke the session's access and refresh tokens at once", async () => {
    const user = await seedAndLogin(ctx, "acme", "developer");
    expect((await ctx.req("POST", "/v1/auth/logout", { headers: user.auth })).status).toBe(204);
    const me = await ctx.req("GET", "/v1/auth/me", { headers: user.auth });
    expect(me.status).toBe(401);
    expect(me.headers.get("www-authenticate")).toContain("revoked");
    expect((await token({ grant_type: "refresh_token", refresh_token: user.refreshToken })).status).toBe(400);
  });

  test.each([
    ["/v1/auth/token", "null", ""],
    ["/v1/auth/token", '{"grant_type":5}', "grant_type"],
    ["/v1/auth/token", '{"grant_type":"client_credentials","client_secret":7}', "client_secret"],
    ["/v1/auth/token", `{"grant_type":"password","password":"${"x".repeat(1025)}"}`, "password"],
    ["/v1/auth/token", '{"grant_type":', undefined],
    ["/v1/auth/token", "", undefined],
    ["/v1/auth/revoke", '{"token":5}', "token"],
    ["/v1/auth/revoke", "[]", undefined],
  ])("%s should answer the body %s in OAuth's format, naming %p", async (path, body, field) => {
    const res = await ctx.app.handle(
      new Request(`http://localhost${path}`, { method: "POST", headers: { "content-type": "application/json" }, body }),
    );
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const problem = (await res.json()) as { error: string; error_description: string; errors?: { field: string }[] };
    expect(problem.error).toBe("invalid_request");
    expect(problem.error_description.length).toBeGreaterThan(0);
    if (field !== undefined) expect(problem.errors?.map((e) => e.field)).toContain(field);
  });

  test("a token request too large or of a type not taken keeps its status and carries an OAuth error", async () => {
    for (const [headers, body, status] of [
      [{ "content-type": "text/plain" }, "grant_type=password", 415],
      [{ "content-type": "application/json" }, `{"x":"${"a".repeat(2 * 1024 * 1024)}"}`, 413],
    ] as const) {
      const res = await ctx.app.handle(
        new Request("http://localhost/v1/auth/token", { method: "POST", headers, body }),
      );
      expect(res.status).toBe(status);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(((await res.json()) as { error: string }).error).toBe("invalid_request");
    }
  });

  test("an API key or refresh token sent as the bearer should get a hint", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const asRefresh = await ctx.req("GET", "/v1/auth/me", {
      headers: { authorization: `Bearer ${user.refreshToken}` },
    });
    expect(asRefresh.headers.get("www-authenticate")).toContain("refresh token");
    const fakeKey = `wdn_${"a".repeat(16)}_${"b".repeat(43)}`;
    const asKey = await ctx.req("GET", "/v1/auth/me", { headers: { authorization: `Bearer ${fakeKey}` } });
    expect(asKey.status).toBe(401);
    expect(asKey.headers.get("www-authenticate")).toContain("client_credentials");
  });

  test("a user should list and end only their own sessions", async () => {
    const seeded = await seedUser(ctx, "acme", "viewer");
    const one = await login(ctx, seeded);
    const two = await login(ctx, seeded);
    const other = await seedAndLogin(ctx, "acme", "viewer");
    const listed = await (await ctx.req("GET", "/v1/auth/sessions", { headers: one.auth })).json();
    expect(listed.sessions).toHaveLength(2);
    expect(listed.sessions.filter((s: { current: boolean }) => s.current)).toHaveLength(1);

    const otherSession = (await (await ctx.req("GET", "/v1/auth/me", { headers: other.auth })).json()).session;
    expect((await ctx.req("DELETE", `/v1/auth/sessions/${otherSession}`, { headers: one.auth })).status).toBe(404);
    expect((await ctx.req("GET", "/v1/auth/me", { headers: other.auth })).status).toBe(200);

    const twoSession = (await (await ctx.req("GET", "/v1/auth/me", { headers: two.auth })).json()).session;
    expect((await ctx.req("DELETE", `/v1/auth/sessions/${twoSession}`, { headers: one.auth })).status).toBe(204);
    expect((await ctx.req("GET", "/v1/auth/me", { headers: two.auth })).status).toBe(401);
    expect((await ctx.req("GET", "/v1/auth/me", { headers: one.auth })).status).toBe(200);
  });

  test("a caller signed in with an API key should see and end only that key's sessions", async () => {
    const admin = await seedAndLogin(ctx, "acme", "admin");
    const created = await ctx.req("POST", "/v1/admin/api-keys", {
      headers: admin.auth,
      body: { name: "ci-readonly", role: "viewer" },
    });
    const { api_key } = await created.json();
    const exchange = async () => {
      const res = await token({ grant_type: "client_credentials", client_secret: api_key }, true);
      return { authorization: `Bearer ${(await res.json()).access_token}` };
    };
    const key = await exchange();
    const keySession = (await (await ctx.req("GET", "/v1/auth/me", { headers: key })).json()).session;
    const adminSession = (await (await ctx.req("GET", "/v1/auth/me", { headers: admin.auth })).json()).session;

    const seen = await (await ctx.req("GET", "/v1/auth/sessions", { headers: key })).json();
    expect(seen.sessions.map((s: { id: string }) => s.id)).toEqual([keySession]);
    expect((await ctx.req("DELETE", `/v1/auth/sessions/${adminSession}`, { headers: key })).status).toBe(404);
    expect((await ctx.req("GET", "/v1/auth/me", { headers: admin.auth })).status).toBe(200);

    // Its owner, signed in with a password, sees both and may end the key's.
    const owned = await (await ctx.req("GET", "/v1/auth/sessions", { headers: admin.auth })).json();
    expect(owned.sessions.map((s: { id: string }) => s.id).sort()).toEqual([adminSession, keySession].sort());
    const other = await exchange();
    const otherSession = (await (await ctx.req("GET", "/v1/auth/me", { headers: other })).json()).session;
    expect((await ctx.req("DELETE", `/v1/auth/sessions/${otherSession}`, { headers: key })).status).toBe(204);
    expect((await ctx.req("DELETE", `/v1/auth/sessions/${keySession}`, { headers: admin.auth })).status).toBe(204);
    expect((await ctx.req("GET", "/v1/auth/me", { headers: key })).status).toBe(401);
  });

  test("GET /v1/auth/me should describe the caller", async () => {
    const user = await seedAndLogin(ctx, "acme", "developer");
    const me = await (await ctx.req("GET", "/v1/auth/me", { headers: user.auth })).json();
    expect(me).toMatchObject({ sub: user.userId, tenant: "acme", role: "developer" });
    expect(Date.parse(me.expires_at) - Date.parse(me.issued_at)).toBe(900_000);
  });

  test("the access log should name the tenant and principal of authenticated requests", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    await ctx.req("GET", "/v1/auth/me", { headers: { ...user.auth, "x-request-id": "who-am-i" } });
    await Bun.sleep(5);
    expect(ctx.logs.find((line) => line.request_id === "who-am-i")).toMatchObject({
      route: "/v1/auth/me",
      tenant: "acme",
      principal: user.userId,
    });
    expect(JSON.stringify(ctx.logs)).not.toContain(user.accessToken);
  });
});
