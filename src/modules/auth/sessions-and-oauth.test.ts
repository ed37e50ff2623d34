import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt } from "jose";
import { createTestContext, type TestContext } from "../../testing/app";
import { login, seedAndLogin, seedUser } from "../../testing/identity";

/** The token endpoint's finer RFC 6749 points, and the session lists and their ends. */
let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(() => ctx.close());

describe("RFC 6749's finer points", () => {
  const raw = (body: string, headers: Record<string, string> = {}, path = "/v1/auth/token") =>
    ctx.req("POST", path, { body, headers: { "content-type": "application/x-www-form-urlencoded", ...headers } });
  const basic = (credentials: string) => ({ authorization: `Basic ${Buffer.from(credentials).toString("base64")}` });
  const refused = async (res: Response, status: number, error: string, field?: string) => {
    expect(res.status).toBe(status);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("pragma")).toBe("no-cache");
    const body = await res.json();
    expect(body.error).toBe(error);
    // §5.2: no '"' or '\\' in error_description.
    expect(body.error_description).toMatch(/^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/);
    if (field !== undefined) expect(body.errors.map((e: { field: string }) => e.field)).toContain(field);
    return res;
  };

  test("a missing parameter is named, in errors too, without a double quote", async () => {
    await refused(await raw("tenant=acme"), 400, "invalid_request", "grant_type");
    await refused(await raw("grant_type=password&tenant=acme"), 400, "invalid_request", "username");
    // Errors the framework raises (an unreadable body) carry Pragma too.
    await refused(
      await ctx.req("POST", "/v1/auth/token", { body: "{nope", headers: { "content-type": "application/json" } }),
      400,
      "invalid_request",
    );
  });

  test("a parameter sent twice, a body that is no object, or a scope is an error", async () => {
    const user = await seedUser(ctx, "acme", "viewer");
    const login = `grant_type=password&tenant=acme&username=${encodeURIComponent(user.email)}&password=${encodeURIComponent(user.password)}`;
    expect((await raw(login)).status).toBe(200);
    await refused(await raw(`${login}&grant_type=client_credentials`), 400, "invalid_request", "grant_type");
    await refused(await raw("token=a&token=b", {}, "/v1/auth/revoke"), 400, "invalid_request", "token");
    for (const body of ["[]", '"x"', "1"]) {
      const res = await ctx.req("POST", "/v1/auth/token", { body, headers: { "content-type": "application/json" } });
      await refused(res, 400, "invalid_request");
    }
    await refused(await raw(`${login}&scope=admin`), 400, "invalid_scope", "scope");
    expect((await raw(`${login}&scope=`)).status).toBe(200);
  });

  test("a client authenticates one way, and only where a grant takes it", async () => {
    const admin = await seedAndLogin(ctx, "acme", "admin");
    const { api_key, key } = await (
      await ctx.req("POST", "/v1/admin/api-keys", { headers: admin.auth, body: { name: "one-way", role: "viewer" } })
    ).json();
    const both = await raw(
      `grant_type=client_credentials&client_secret=${encodeURIComponent(api_key)}`,
      basic(`${key.id}:${api_key}`),
    );
    await refused(both, 400, "invalid_request", "client_secret");
    for (const header of [{ authorization: "Basic" }, { authorization: "Basic " }]) {
      const empty = await refused(await raw("grant_type=client_credentials", header), 401, "invalid_client");
      expect(empty.headers.get("www-authenticate")).toBe('Basic realm="warden"');
    }
    const user = await seedUser(ctx, "acme", "viewer");
    const withBasic = await raw(
      `grant_type=password&tenant=acme&username=${encodeURIComponent(user.email)}&password=${encodeURIComponent(user.password)}`,
      basic(`${key.id}:wrong`),
    );
    await refused(withBasic, 401, "invalid_client");
    expect(withBasic.headers.get("www-authenticate")).toBe('Basic realm="warden"');

    // RFC 6749 §6: a client that authenticated to get its refresh token authenticates to use it.
    const asKey = basic(`${key.id}:${api_key}`);
    const first = await (await raw("grant_type=client_credentials", asKey)).json();
    const refreshed = await raw(`grant_type=refresh_token&refresh_token=${first.refresh_token}`, asKey);
    expect(refreshed.status).toBe(200);
    const next = (await refreshed.json()).refresh_token;
    const other = await (
      await ctx.req("POST", "/v1/admin/api-keys", { headers: admin.auth, body: { name: "other", role: "viewer" } })
    ).json();
    const asOther = await raw(
      `grant_type=refresh_token&refresh_token=${next}`,
      basic(`${other.key.id}:${other.api_key}`),
    );
    await refused(asOther, 401, "invalid_client");
    expect(asOther.headers.get("www-authenticate")).toBe('Basic realm="warden"');
    // The refusal used nothing up: the right client still refreshes.
    expect((await raw(`grant_type=refresh_token&refresh_token=${next}`, asKey)).status).toBe(200);
    const session = await login(ctx, user);
    await refused(
      await raw(`grant_type=refresh_token&refresh_token=${session.refreshToken}`, asKey),
      401,
      "invalid_client",
    );

    // Credentials in the body are checked as a Basic header's are: another key, a wrong secret, or
    // a key on a password session are refused; the session's own key, whole or split, refreshes.
    const machine = await (await raw("grant_type=client_credentials", asKey)).json();
    const secretPart = api_key.slice(`wdn_${key.id}_`.length);
    for (const credentials of [
      `client_secret=${encodeURIComponent(other.api_key)}`,
      `client_id=${key.id}&client_secret=WRONGWRONG`,
      `client_id=${other.key.id}&client_secret=${encodeURIComponent(api_key)}`,
    ]) {
      await refused(
        await raw(`grant_type=refresh_token&refresh_token=${machine.refresh_token}&${credentials}`),
        // §5.2: 401 is for a client that authenticated with the Authorization header.
        400,
        "invalid_client",
      );
    }
    const passwordSession = await login(ctx, user);
    await refused(
      await raw(
        `grant_type=refresh_token&refresh_token=${passwordSession.refreshToken}&client_secret=${encodeURIComponent(api_key)}`,
      ),
      400,
      "invalid_client",
    );
    const whole = await raw(
      `grant_type=refresh_token&refresh_token=${machine.refresh_token}&client_secret=${encodeURIComponent(api_key)}`,
    );
    expect(whole.status).toBe(200);
    const split = await raw(
      `grant_type=refresh_token&refresh_token=${(await whole.json()).refresh_token}&client_id=${key.id}&client_secret=${secretPart}`,
    );
    expect(split.status).toBe(200);
    // A Basic header and a client_id in the body naming another client: which one is asking?
    await refused(
      await raw(`grant_type=client_credentials&client_id=${other.key.id}`, asKey),
      400,
      "invalid_request",
      "client_id",
    );
    await refused(
      await raw(
        `grant_type=refresh_token&refresh_token=${(await split.json()).refresh_token}&client_id=${other.key.id}`,
        asKey,
      ),
      400,
      "invalid_request",
      "client_id",
    );
    // Repeating the same client's id alongside Basic is fine.
    expect((await raw(`grant_type=client_credentials&client_id=${key.id}`, asKey)).status).toBe(200);
  });
});

describe("session lists", () => {
  test("page newest first for the caller and for an admin, and refuse a cursor they did not hand out", async () => {
    const user = await seedUser(ctx, "acme", "viewer");
    const logins = [];
    for (let i = 0; i < 5; i++) logins.push(await login(ctx, user));
    const sids = logins.map((l) => decodeJwt(l.accessToken).sid as string).reverse();
    const admin = await seedAndLogin(ctx, "acme", "admin");
    for (const [path, auth] of [
      ["/v1/auth/sessions?limit=2", logins[0]?.auth],
      [`/v1/admin/sessions?user_id=${user.userId}&limit=2`, admin.auth],
    ] as const) {
      const seen: string[] = [];
      let cursor: string | null = "";
      for (let pages = 0; cursor !== null; pages++) {
        expect(pages).toBeLessThan(4);
        const res = await ctx.req("GET", `${path}${cursor ? `&cursor=${cursor}` : ""}`, { headers: auth });
        const page = (await res.json()) as { sessions: { id: string }[]; next_cursor: string | null };
        expect(page.sessions.length).toBeLessThanOrEqual(2);
        seen.push(...page.sessions.map((s) => s.id));
        cursor = page.next_cursor;
      }
      expect(seen).toEqual(sids);
      expect((await ctx.req("GET", `${path}&cursor=nope`, { headers: auth })).status).toBe(422);
    }
  });
});

describe("ending what has ended", () => {
  test("an ended session is gone for its user, and ending it again writes nothing new", async () => {
    const user = await seedUser(ctx, "acme", "viewer");
    const first = await login(ctx, user);
    const second = await login(ctx, user);
    const sid = decodeJwt(second.accessToken).sid as string;
    const end = () => ctx.req("DELETE", `/v1/auth/sessions/${sid}`, { headers: first.auth });
    const events = (action: string) => ctx.auditEvents(action).filter((e) => e.target_id === sid).length;
    expect((await end()).status).toBe(204);
    expect((await end()).status).toBe(404);
    expect(events("session.revoke")).toBe(1);
    // RFC 7009: still 200 for a refresh token of an ended session, and no second event.
    for (let i = 0; i < 2; i++) {
      expect((await ctx.req("POST", "/v1/auth/revoke", { body: { token: second.refreshToken } })).status).toBe(200);
    }
    expect(events("token.revoke")).toBe(0);
    // An admin revoking it keeps the revocation's own reason and time.
    const admin = await seedAndLogin(ctx, "acme", "admin");
    const before = ctx.deps.db.$client
      .query("SELECT reason, cutoff_at FROM revocation_cutoffs WHERE subject = ?")
      .get(sid) as { reason: string; cutoff_at: number };
    ctx.clock.advance(1000);
    const again = await ctx.req("POST", "/v1/admin/revocations", { headers: admin.auth, body: { session_id: sid } });
    expect(again.status).toBeLessThan(300);
    expect(
      ctx.deps.db.$client.query("SELECT reason, cutoff_at FROM revocation_cutoffs WHERE subject = ?").get(sid),
    ).toEqual(before);
  });
});
