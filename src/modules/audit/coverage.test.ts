import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt } from "jose";
import type { TestContext } from "../../testing/app";
import { createAdminWithCli, runCli, runCliOrThrow } from "../../testing/cli";
import {
  contextWithAdmin,
  type LoggedIn,
  login,
  type SeededUser,
  seedAndLogin,
  seedUser,
} from "../../testing/identity";
import { AuditAction, type AuditActionName } from "./actions";

const USER_AGENT = "coverage-test/1.0";

let ctx: TestContext;
let admin: LoggedIn;
beforeAll(async () => {
  ({ ctx, admin } = await contextWithAdmin());
});
afterAll(() => ctx.close());

type RequestHeaders = Record<string, string>;
type ActorType = "user" | "api_key" | "anonymous";

interface Outcome {
  res: Response;
  actor: [ActorType, string | null];
  target?: string;
}

interface Row {
  name: string;
  status: number;
  action: AuditActionName;
  outcome: "success" | "failure" | "denied";
  targetType: string;
  run(headers: RequestHeaders): Promise<Outcome>;
}

const post = (path: string, headers: RequestHeaders, body?: unknown) => ctx.req("POST", path, { headers, body });
const asAdmin = (headers: RequestHeaders) => ({ ...headers, ...admin.auth });
const passwordGrant = (user: SeededUser, headers: RequestHeaders, password = user.password) =>
  post("/v1/auth/token", headers, { grant_type: "password", tenant: user.tenant, username: user.email, password });
const refreshGrant = (refreshToken: string, headers: RequestHeaders = {}) =>
  post("/v1/auth/token", headers, { grant_type: "refresh_token", refresh_token: refreshToken });
const claim = (token: string, name: "jti" | "sid") => String(decodeJwt(token)[name]);
const adminActor = (): [ActorType, string] => ["user", admin.userId];

async function newApiKey(role = "developer"): Promise<{ id: string; secret: string }> {
  const res = await post("/v1/admin/api-keys", admin.auth, { name: "coverage", role });
  const body = await res.json();
  return { id: body.key.id, secret: body.api_key };
}

const row = (
  name: string,
  status: number,
  action: AuditActionName,
  outcome: Row["outcome"],
  targetType: string,
  run: Row["run"],
): Row => ({ name, status, action, outcome, targetType, run });

async function newEndpoint(): Promise<string> {
  const res = await post("/v1/webhooks/endpoints", admin.auth, { url: "http://127.0.0.1:9/coverage?token=abc" });
  return (await res.json()).endpoint.id;
}

const endpointRow = (
  name: string,
  status: number,
  action: AuditActionName,
  method: string,
  suffix: string,
  body?: unknown,
) =>
  row(name, status, action, "success", "webhook_endpoint", async (h) => {
    const id = await newEndpoint();
    const res = await ctx.req(method, `/v1/webhooks/endpoints/${id}${suffix}`, { headers: asAdmin(h), body });
    return { res, actor: adminActor(), target: id };
  });

const ROWS: Row[] = [
  row("password login", 200, AuditAction.loginSucceeded, "success", "session", async (h) => {
    const user = await seedUser(ctx, "acme", "viewer");
    const res = await passwordGrant(user, h);
    return { res, actor: ["user", user.userId], target: claim((await res.clone().json()).access_token, "sid") };
  }),
  row("failed login", 400, AuditAction.loginFailed, "failure", "user", async (h) => {
    const user = await seedUser(ctx, "acme", "viewer");
    return { res: await passwordGrant(user, h, "wrong password"), actor: ["anonymous", null], target: user.userId };
  }),
  row("client_credentials", 200, AuditAction.tokenIssued, "success", "session", async (h) => {
    const key = await newApiKey();
    const res = await post("/v1/auth/token", h, { grant_type: "client_credentials", client_secret: key.secret });
    return { res, actor: ["api_key", key.id], target: claim((await res.clone().json()).access_token, "sid") };
  }),
  row("refresh", 200, AuditAction.tokenRefreshed, "success", "session", async (h) => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const res = await refreshGrant(user.refreshToken, h);
    return { res, actor: ["user", user.userId], target: claim(user.accessToken, "sid") };
  }),
  row("refresh token reuse", 400, AuditAction.refreshReused, "denied", "session", async (h) => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    expect((await refreshGrant(user.refreshToken)).status).toBe(200);
    const res = await refreshGrant(user.refreshToken, h);
    return { res, actor: ["user", user.userId], target: claim(user.accessToken, "sid") };
  }),
  row("RFC 7009 revoke of a refresh token", 200, AuditAction.tokenRevoked, "success", "session", async (h) => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const res = await post("/v1/auth/revoke", h, { token: user.refreshToken });
    return { res, actor: ["anonymous", null], target: claim(user.accessToken, "sid") };
  }),
  row("RFC 7009 revoke of an access token", 200, AuditAction.tokenRevoked, "success", "token", async (h) => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const res = await post("/v1/auth/revoke", h, { token: user.accessToken });
    return { res, actor: ["anonymous", null], target: claim(user.accessToken, "jti") };
  }),
  row("logout", 204, AuditAction.logout, "success", "session", async (h) => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const res = await post("/v1/auth/logout", { ...h, ...user.auth });
    return { res, actor: ["user", user.userId], target: claim(user.accessToken, "sid") };
  }),
  row("ending one's own other session", 204, AuditAction.sessionRevoked, "success", "session", async (h) => {
    const seeded = await seedUser(ctx, "acme", "viewer");
    const [first, second] = [await login(ctx, seeded), await login(ctx, seeded)];
    const sid = claim(second.accessToken, "sid");
    const res = await ctx.req("DELETE", `/v1/auth/sessions/${sid}`, { headers: { ...h, ...first.auth } });
    return { res, actor: ["user", seeded.userId], target: sid };
  }),
  row("user create", 201, AuditAction.userCreated, "success", "user", async (h) => {
    const res = await post("/v1/admin/users", asAdmin(h), { email: "created@acme.test", role: "viewer" });
    return { res, actor: adminActor(), target: (await res.clone().json()).user?.id };
  }),
  row("user disable", 200, AuditAction.userDisabled, "success", "user", async (h) => {
    const user = await seedUser(ctx, "acme", "viewer");
    const res = await post(`/v1/admin/users/${user.userId}/disable`, asAdmin(h));
    return { res, actor: adminActor(), target: user.userId };
  }),
  row("user enable", 200, AuditAction.userEnabled, "success", "user", async (h) => {
    const user = await seedUser(ctx, "acme", "viewer");
    await post(`/v1/admin/users/${user.userId}/disable`, admin.auth);
    const res = await post(`/v1/admin/users/${user.userId}/enable`, asAdmin(h));
    return { res, actor: adminActor(), target: user.userId };
  }),
  row("API key create", 201, AuditAction.apiKeyCreated, "success", "api_key", async (h) => {
    const res = await post("/v1/admin/api-keys", asAdmin(h), { name: "made here" });
    return { res, actor: adminActor(), target: (await res.clone().json()).key?.id };
  }),
  row("API key revoke", 204, AuditAction.apiKeyRevoked, "success", "api_key", async (h) => {
    const key = await newApiKey();
    const res = await ctx.req("DELETE", `/v1/admin/api-keys/${key.id}`, { headers: asAdmin(h) });
    return { res, actor: adminActor(), target: key.id };
  }),
  row("admin revocation by jti", 201, AuditAction.revocationCreated, "success", "token", async (h) => {
    const res = await post("/v1/admin/revocations", asAdmin(h), { jti: "jti-coverage" });
    return { res, actor: adminActor(), target: "jti-coverage" };
  }),
  row("admin revocation by user", 201, AuditAction.revocationCreated, "success", "user", async (h) => {
    const user = await seedUser(ctx, "acme", "viewer");
    const res = await post("/v1/admin/revocations", asAdmin(h), { user_id: user.userId });
    return { res, actor: adminActor(), target: user.userId };
  }),
  row("admin revocation by session", 201, AuditAction.revocationCreated, "success", "session", async (h) => {
    const sid = claim((await seedAndLogin(ctx, "acme", "viewer")).accessToken, "sid");
    const res = await post("/v1/admin/revocations", asAdmin(h), { session_id: sid });
    return { res, actor: adminActor(), target: sid };
  }),
  row("bulk revocation preview", 200, AuditAction.bulkRevocationPreviewed, "success", "role", async (h) => {
    const res = await post("/v1/admin/revocations/preview", asAdmin(h), { scope: "role", role: "developer" });
    return { res, actor: adminActor(), target: "developer" };
  }),
  row("bulk revocation confirm", 200, AuditAction.bulkRevocationConfirmed, "success", "role", async (h) => {
    const preview = await post("/v1/admin/revocations/preview", admin.auth, { scope: "role", role: "developer" });
    const { confirm_token } = await preview.json();
    const res = await post("/v1/admin/revocations/confirm", asAdmin(h), { confirm_token });
    return { res, actor: adminActor(), target: "developer" };
  }),
  row("admin route with too small a role (403)", 403, AuditAction.accessDenied, "denied", "route", async (h) => {
    const viewer = await seedAndLogin(ctx, "acme", "viewer");
    const res = await ctx.req("GET", "/v1/admin/users", { headers: { ...h, ...viewer.auth } });
    return { res, actor: ["user", viewer.userId], target: "GET /v1/admin/users" };
  }),
  row("admin route for another tenant (403)", 403, AuditAction.accessDenied, "denied", "route", async (h) => {
    const res = await ctx.req("GET", "/v1/admin/users", { headers: { ...asAdmin(h), "x-client-id": "globex" } });
    return { res, actor: adminActor(), target: "GET /v1/admin/users" };
  }),
  row("webhook endpoint create", 201, AuditAction.webhookCreated, "success", "webhook_endpoint", async (h) => {
    const res = await post("/v1/webhooks/endpoints", asAdmin(h), { url: "http://127.0.0.1:9/in?token=s3cr3t" });
    const { endpoint } = await res.clone().json();
    const [event] = ctx.auditEvents(AuditAction.webhookCreated).slice(-1);
    // The receiver's own query-string token stays out of the trail.
    expect(event?.params).not.toContain("s3cr3t");
    return { res, actor: adminActor(), target: endpoint.id };
  }),
  endpointRow("webhook endpoint delete", 204, AuditAction.webhookDeleted, "DELETE", ""),
  row("webhook endpoint update", 200, AuditAction.webhookUpdated, "success", "webhook_endpoint", async (h) => {
    const id = await newEndpoint();
    const res = await ctx.req("PATCH", `/v1/webhooks/endpoints/${id}`, {
      headers: asAdmin(h),
      body: { url: "http://127.0.0.1:9/moved?token=s3cr3t", event_types: ["alert.*", "alert.*"] },
    });
    const [event] = ctx.auditEvents(AuditAction.webhookUpdated).slice(-1);
    expect(event?.params).not.toContain("s3cr3t");
    // Origin and a hash of the whole URL: path and query may hold the receiver's token.
    const trail = (url: string) =>
      `http://127.0.0.1:9/… (sha256 ${new Bun.CryptoHasher("sha256").update(url).digest("hex").slice(0, 16)})`;
    expect(JSON.parse(String(event?.params))).toEqual({
      url: trail("http://127.0.0.1:9/moved?token=s3cr3t"),
      event_types: ["alert.*"],
      previous: { url: trail("http://127.0.0.1:9/coverage?token=abc"), event_types: [] },
    });
    return { res, actor: adminActor(), target: id };
  }),
  endpointRow("webhook secret rotation", 200, AuditAction.webhookSecretRotated, "POST", "/rotate-secret"),
  endpointRow("webhook endpoint disable", 200, AuditAction.webhookDisabled, "POST", "/disable"),
  row("webhook endpoint enable", 200, AuditAction.webhookEnabled, "success", "webhook_endpoint", async (h) => {
    const id = await newEndpoint();
    await post(`/v1/webhooks/endpoints/${id}/disable`, admin.auth);
    const res = await post(`/v1/webhooks/endpoints/${id}/enable`, asAdmin(h));
    return { res, actor: adminActor(), target: id };
  }),
  endpointRow("delivery replay", 200, AuditAction.deliveriesReplayed, "POST", "/replay", {
    since: "2020-01-01T00:00:00Z",
  }),
  row("delivery retry", 202, AuditAction.deliveryRetried, "success", "webhook_delivery", async (h) => {
    await newEndpoint();
    const developer = await seedAndLogin(ctx, "acme", "developer");
    const sent = await post("/v1/notifications", developer.auth, {
      recipients: { user_ids: [admin.userId] },
      type: "coverage.test",
      title: "retry me",
    });
    const { notification } = await sent.json();
    const sqlite = ctx.deps.db.$client;
    const delivery = sqlite
      .query<{ id: string }, [string]>("SELECT id FROM webhook_deliveries WHERE notification_id = ? LIMIT 1")
      .get(notification.id);
    sqlite.query("UPDATE webhook_deliveries SET status = 'dead' WHERE id = ?").run(delivery?.id ?? "");
    const res = await post(`/v1/webhooks/deliveries/${delivery?.id}/retry`, asAdmin(h));
    return { res, actor: adminActor(), target: delivery?.id };
  }),
  ...(
    [
      ["audit read", "/v1/audit", AuditAction.auditRead],
      ["audit export", "/v1/audit/export", AuditAction.auditExported],
      ["audit verify", "/v1/audit/verify", AuditAction.auditVerified],
    ] as const
  ).map(([name, path, action]) =>
    row(name, 200, action, "success", "audit", async (h) => {
      const res = await ctx.req("GET", path, { headers: asAdmin(h) });
      return { res, actor: adminActor(), target: "acme" };
    }),
  ),
];

describe("every audited action leaves its event", () => {
  let serial = 0;
  for (const row of ROWS) {
    test(`${row.name} → ${row.action} (${row.outcome})`, async () => {
      const requestId = `coverage-${++serial}`;
      const { res, actor, target } = await row.run({ "x-request-id": requestId, "user-agent": USER_AGENT });
      expect(res.status, await res.clone().text()).toBe(row.status);
      await res.arrayBuffer();
      const events = ctx.auditEvents().filter((event) => event.request_id === requestId);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        action: row.action,
        outcome: row.outcome,
        tenant_id: "acme",
        actor_type: actor[0],
        actor_id: actor[1],
        target_type: row.targetType,
        ...(target === undefined ? {} : { target_id: target }),
        user_agent: USER_AGENT,
      });
    });
  }

  test("a denied request should record the path it asked for, ids included, and no query", async () => {
    const viewer = await seedAndLogin(ctx, "acme", "viewer");
    const res = await ctx.req("DELETE", "/v1/admin/api-keys/str2ac0jn60fghj3?why=1", { headers: viewer.auth });
    expect(res.status).toBe(403);
    const [event] = ctx.auditEvents(AuditAction.accessDenied).slice(-1);
    expect(event?.target_id).toBe("DELETE /v1/admin/api-keys/:id");
    expect(JSON.parse(String(event?.params))).toEqual({ path: "/v1/admin/api-keys/str2ac0jn60fghj3" });
  });

  test("a bulk preview should record the scope and role it previewed", () => {
    const [event] = ctx.auditEvents(AuditAction.bulkRevocationPreviewed).slice(-1);
    expect(JSON.parse(String(event?.params))).toEqual({ scope: "role", role: "developer" });
  });

  test("the table should name every action but the CLI-only ones", () => {
    const covered = new Set(ROWS.map((row) => row.action));
    const missing = Object.values(AuditAction).filter((action) => !covered.has(action));
    // CLI-only: keys.rotate (tested below), audit.sign_checkpoints (checkpoints.test.ts).
    expect(missing).toEqual([AuditAction.keysRotated, AuditAction.auditCheckpointsSigned]);
  });
});

describe("admin writes made by the CLI", () => {
  test("admin create should record user.create and apikey.create with the system actor", async () => {
    const created = await createAdminWithCli(ctx.deps.config.dataDir, { tenant: "cli-made", email: "root@cli.test" });
    const events = ctx.auditEvents().filter((event) => event.tenant_id === "cli-made");
    expect(events.map((event) => [event.action, event.actor_type, event.actor_id, event.target_id])).toEqual([
      [AuditAction.userCreated, "system", "cli", created.user_id],
      [AuditAction.apiKeyCreated, "system", "cli", expect.any(String)],
    ]);
    expect(JSON.stringify(events)).not.toContain(created.api_key);
    expect(JSON.stringify(events)).not.toContain(created.password);
  });

  test("keys rotate should record keys.rotate with the system actor", async () => {
    const before = ctx.auditEvents(AuditAction.keysRotated).length;
    await runCliOrThrow(ctx.deps.config.dataDir, ["keys", "rotate", "--force"]);
    const events = ctx.auditEvents(AuditAction.keysRotated);
    expect(events).toHaveLength(before + 1);
    expect(events.at(-1)).toMatchObject({ actor_type: "system", actor_id: "cli", outcome: "success" });
  });

  test("keys rotate whose event cannot be written should rotate nothing", async () => {
    const sqlite = ctx.deps.db.$client;
    const ring = () => sqlite.query("SELECT kid, status FROM signing_keys ORDER BY kid").all();
    const before = ring();
    sqlite.run(`CREATE TRIGGER fault BEFORE INSERT ON audit_events WHEN NEW.action = 'keys.rotate'
      BEGIN SELECT RAISE(ABORT, 'injected fault'); END`);
    try {
      const result = await runCli(ctx.deps.config.dataDir, ["keys", "rotate", "--force"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("injected fault");
    } finally {
      sqlite.run("DROP TRIGGER fault");
    }
    expect(ring()).toEqual(before);
  });
});
