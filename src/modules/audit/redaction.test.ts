import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { canonicalJson } from "../../lib/canonical-json";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";
import { AuditAction } from "./actions";
import { REDACTED, redactParams } from "./redact";

const CHOSEN_PASSWORD = "Chosen-Pa55phrase-for-the-new-user";
const WRONG_PASSWORD = "Wrong-Pa55phrase-typed-by-mistake";

let ctx: TestContext;
let admin: LoggedIn;
/** Every secret the requests below carried or received. */
const secrets: string[] = [];

const token = async (body: Record<string, string>) => {
  const res = await ctx.req("POST", "/v1/auth/token", { body });
  return { status: res.status, body: await res.json() };
};

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await seedAndLogin(ctx, "acme", "admin");
  secrets.push(admin.password, admin.accessToken, admin.refreshToken, WRONG_PASSWORD, CHOSEN_PASSWORD);
  const as = (method: string, path: string, body?: unknown) => ctx.req(method, path, { headers: admin.auth, body });

  const wrong = await token({
    grant_type: "password",
    tenant: "acme",
    username: admin.email,
    password: WRONG_PASSWORD,
  });
  expect(wrong.status).toBe(400);

  const created = await as("POST", "/v1/admin/users", {
    email: "chosen@acme.test",
    role: "developer",
    password: CHOSEN_PASSWORD,
  });
  expect(created.status).toBe(201);
  const generated = await (
    await as("POST", "/v1/admin/users", { email: "generated@acme.test", role: "viewer" })
  ).json();
  secrets.push(generated.password);

  const key = await as("POST", "/v1/admin/api-keys", { name: "ci", role: "developer" });
  expect(key.status).toBe(201);
  const { api_key } = await key.json();
  secrets.push(api_key, String(api_key).replace(/^wdn_[^_]+_/, ""));

  const issued = await token({ grant_type: "client_credentials", client_secret: api_key });
  expect(issued.status).toBe(200);
  const refreshed = await token({ grant_type: "refresh_token", refresh_token: issued.body.refresh_token });
  expect(refreshed.status).toBe(200);
  secrets.push(
    issued.body.access_token,
    issued.body.refresh_token,
    refreshed.body.access_token,
    refreshed.body.refresh_token,
  );
  const bad = await token({ grant_type: "client_credentials", client_secret: `${api_key}x` });
  expect(bad.status).toBe(400);
  secrets.push(`${api_key}x`);

  const chosen = await token({
    grant_type: "password",
    tenant: "acme",
    username: "chosen@acme.test",
    password: CHOSEN_PASSWORD,
  });
  expect(chosen.status).toBe(200);
  secrets.push(chosen.body.access_token, chosen.body.refresh_token);
  await ctx.req("POST", "/v1/auth/revoke", { body: { token: chosen.body.refresh_token } });
  await ctx.req("POST", "/v1/auth/revoke", { body: { token: refreshed.body.access_token } });
  // Access lines are written after the response; give the last one its turn.
  await Bun.sleep(20);
});
afterAll(() => ctx.close());

describe("what reaches the database and the logs", () => {
  test("the requests should have been audited (the check below is not vacuous)", () => {
    for (const action of [
      "auth.login",
      "auth.login_failed",
      "token.issue",
      "token.refresh",
      "user.create",
      "apikey.create",
      "token.revoke",
    ]) {
      expect(ctx.auditEvents(action).length).toBeGreaterThan(0);
    }
    expect(ctx.logs.filter((line) => line.route === "/v1/auth/token").length).toBeGreaterThanOrEqual(6);
  });

  test("no password, API key, access or refresh token should appear in audit_events", () => {
    const rows = ctx.deps.db.$client.query("SELECT * FROM audit_events").all();
    const dump = JSON.stringify(rows);
    for (const secret of secrets) expect(dump).not.toContain(secret);
  });

  test("no password, API key, access or refresh token should appear in the logs", () => {
    const dump = JSON.stringify(ctx.logs);
    for (const secret of secrets) expect(dump).not.toContain(secret);
  });
});

describe("params kept", () => {
  const paramsOf = (action: string) => ctx.auditEvents(action).map((row) => JSON.parse(row.params));

  test("auth.login_failed keeps who tried, never what they typed", () => {
    expect(paramsOf(AuditAction.loginFailed)).toContainEqual({
      grant_type: "password",
      tenant: "acme",
      username: admin.email,
    });
    expect(paramsOf(AuditAction.loginFailed)).toContainEqual({ grant_type: "client_credentials" });
  });

  test.each([["Tr0ub4dor&3-typed-one-field-early"], ["P@ssw0rd!2026"], ["p@ss"]])(
    "a password typed as the username (%s) is not kept; the attempt is its tenant's to see",
    async (typo) => {
      const res = await ctx.req("POST", "/v1/auth/token", {
        body: { grant_type: "password", tenant: "acme", username: typo, password: "x" },
      });
      expect(res.status).toBe(400);
      const dump = JSON.stringify(ctx.deps.db.$client.query("SELECT * FROM audit_events").all());
      expect(dump).not.toContain(typo);
      const last = ctx.auditEvents(AuditAction.loginFailed).at(-1);
      expect(last?.tenant_id).toBe("acme");
      expect(JSON.parse(last?.params ?? "{}").username).toBe("(not an email address: not recorded)");
      // An unknown address is kept: repeated attempts on one are what an admin looks for.
      await ctx.req("POST", "/v1/auth/token", {
        body: { grant_type: "password", tenant: "acme", username: "nobody@acme.test", password: "x" },
      });
      expect(JSON.parse(ctx.auditEvents(AuditAction.loginFailed).at(-1)?.params ?? "{}").username).toBe(
        "nobody@acme.test",
      );
      // A tenant that does not exist has no admin to show it to.
      await ctx.req("POST", "/v1/auth/token", {
        body: { grant_type: "password", tenant: "no-such-tenant", username: "a@b.test", password: "x" },
      });
      expect(ctx.auditEvents(AuditAction.loginFailed).at(-1)?.tenant_id).toBeNull();
    },
  );

  test("a password typed as the tenant is not kept: a tenant no one has is not recorded", async () => {
    const typo = "Tr0ub4dor&3-secret";
    const res = await ctx.req("POST", "/v1/auth/token", {
      body: { grant_type: "password", tenant: typo, username: admin.email, password: "x" },
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(ctx.deps.db.$client.query("SELECT * FROM audit_events").all())).not.toContain(typo);
    const last = ctx.auditEvents(AuditAction.loginFailed).at(-1);
    expect(last?.tenant_id).toBeNull();
    expect(JSON.parse(last?.params ?? "{}")).toEqual({
      grant_type: "password",
      tenant: "(no such tenant: not recorded)",
      username: admin.email,
    });
  });

  test("auth.login keeps the username and tenant", () => {
    expect(paramsOf(AuditAction.loginSucceeded)).toContainEqual({
      grant_type: "password",
      tenant: "acme",
      username: "chosen@acme.test",
    });
  });

  test("user.create keeps email and role only", () => {
    expect(paramsOf(AuditAction.userCreated)).toEqual([
      { email: "chosen@acme.test", role: "developer" },
      { email: "generated@acme.test", role: "viewer" },
    ]);
  });

  test("apikey.create keeps name, role and owner", () => {
    expect(paramsOf(AuditAction.apiKeyCreated)).toEqual([{ name: "ci", role: "developer", user_id: admin.userId }]);
  });

  test("params_hash should be the SHA-256 of the canonical stored params, for every event", () => {
    const rows = ctx.auditEvents();
    for (const row of rows) {
      const expected = createHash("sha256")
        .update(canonicalJson(JSON.parse(row.params)))
        .digest("hex");
      expect(row.params_hash).toBe(expected);
    }
    // The hash is over canonical JSON: key order does not matter.
    expect(canonicalJson({ role: "viewer", email: "a@b" })).toBe(canonicalJson({ email: "a@b", role: "viewer" }));
  });
});

describe("redactParams", () => {
  test("should drop keys the action's allow-list does not name", () => {
    expect(
      redactParams(AuditAction.userCreated, { email: "a@acme.test", role: "viewer", password: "hunter2", note: "x" }),
    ).toEqual({ email: "a@acme.test", role: "viewer" });
    expect(redactParams(AuditAction.tokenRefreshed, { refresh_token: "wrt_x", grant_type: "refresh_token" })).toEqual(
      {},
    );
    expect(redactParams(AuditAction.loginFailed, undefined)).toEqual({});
  });

  test("should replace deny-listed keys at any depth, in objects and arrays, whatever their case", () => {
    const nested = {
      password: "p-1",
      Secret: "s-1",
      refresh_token: "t-1",
      API_KEY: "k-1",
      Authorization: "Bearer a-1",
      cookie: "c-1",
      client_credentials: "cc-1",
      keep: "visible",
      deeper: { passphrase: "p-2", list: [{ token: "t-2", ok: 1 }, { "x-api-key": "k-2" }], set_cookie: ["c-2"] },
    };
    const redacted = redactParams(AuditAction.bulkRevocationConfirmed, { scope: nested, users: 3, password: "top" });
    expect(redacted).toEqual({
      scope: {
        password: REDACTED,
        Secret: REDACTED,
        refresh_token: REDACTED,
        API_KEY: REDACTED,
        Authorization: REDACTED,
        cookie: REDACTED,
        client_credentials: REDACTED,
        keep: "visible",
        deeper: {
          passphrase: REDACTED,
          list: [{ token: REDACTED, ok: 1 }, { "x-api-key": REDACTED }],
          set_cookie: REDACTED,
        },
      },
      users: 3,
    });
    const text = JSON.stringify(redacted);
    for (const secret of ["p-1", "s-1", "t-1", "k-1", "a-1", "c-1", "cc-1", "p-2", "t-2", "k-2", "c-2", "top"]) {
      expect(text).not.toContain(secret);
    }
  });

  test("should not change the params it was given", () => {
    const params = { scope: { token: "t" }, users: 1 };
    redactParams(AuditAction.bulkRevocationConfirmed, params);
    expect(params).toEqual({ scope: { token: "t" }, users: 1 });
  });
});
