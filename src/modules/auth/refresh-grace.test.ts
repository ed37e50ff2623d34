import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sha256Hex } from "../../lib/secrets";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";

const GRACE_SECONDS = 30;
let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ REFRESH_TOKEN_REUSE_GRACE_SECONDS: String(GRACE_SECONDS) });
});
afterAll(() => ctx.close());

async function refresh(refreshToken: string) {
  const res = await ctx.req("POST", "/v1/auth/token", {
    body: { grant_type: "refresh_token", refresh_token: refreshToken },
  });
  const body = (await res.json()) as { access_token?: string; refresh_token?: string; error_description?: string };
  return { status: res.status, ...body };
}

const me = async (access: string) =>
  (await ctx.req("GET", "/v1/auth/me", { headers: { authorization: `Bearer ${access}` } })).status;

/** The session's access still works: not revoked. */
async function sessionAlive(user: LoggedIn) {
  return (await me(user.accessToken)) === 200;
}

describe("REFRESH_TOKEN_REUSE_GRACE_SECONDS: a retry of a refresh whose answer was lost", () => {
  test("within the grace, the rotated token works again, and the answer it replaced no longer does", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const lost = await refresh(user.refreshToken);
    expect(lost.status).toBe(200);
    ctx.clock.advance(5_000);
    const retried = await refresh(user.refreshToken);
    expect(retried.status).toBe(200);
    expect(retried.refresh_token).not.toBe(lost.refresh_token);
    expect(await me(retried.access_token as string)).toBe(200);
    // Retried again (a second dropped answer): still the latest rotation, still within its grace.
    const again = await refresh(user.refreshToken);
    expect(again.status).toBe(200);
    expect(await sessionAlive(user)).toBe(true);
    const events = ctx.auditEvents("token.refresh").filter((event) => event.target_id === lostSession(user));
    expect(events.map((event) => event.reason)).toEqual([
      null,
      expect.stringContaining("GRACE"),
      expect.stringContaining("GRACE"),
    ]);
    // The chain goes on from the newest answer.
    const next = await refresh(again.refresh_token as string);
    expect(next.status).toBe(200);
  });

  test("the answer a retry replaced no longer works: presenting it is reuse", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const lost = await refresh(user.refreshToken);
    const retried = await refresh(user.refreshToken);
    expect(retried.status).toBe(200);
    expect((await refresh(lost.refresh_token as string)).status).toBe(400);
    expect(await sessionAlive(user)).toBe(false);
  });

  test("a token a retry superseded is reuse: the session is revoked (whoever held it is cut off too)", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const first = await refresh(user.refreshToken);
    const retried = await refresh(user.refreshToken);
    expect(retried.status).toBe(200);
    const superseded = await refresh(first.refresh_token as string);
    expect(superseded.status).toBe(400);
    expect(superseded.error_description).toContain("already used");
    expect(await me(retried.access_token as string)).toBe(401);
  });

  test("after the grace, presenting a rotated token again is reuse, as without one", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    expect((await refresh(user.refreshToken)).status).toBe(200);
    ctx.clock.advance((GRACE_SECONDS + 1) * 1000);
    const late = await refresh(user.refreshToken);
    expect(late.status).toBe(400);
    expect(await sessionAlive(user)).toBe(false);
  });

  test("an older token of the chain is reuse even within the grace", async () => {
    const user = await seedAndLogin(ctx, "acme", "viewer");
    const first = await refresh(user.refreshToken);
    const second = await refresh(first.refresh_token as string);
    expect(second.status).toBe(200);
    // The chain moved on: the first token is not the latest rotation, whatever the time.
    expect((await refresh(user.refreshToken)).status).toBe(400);
    expect(await sessionAlive(user)).toBe(false);
  });

  test("two refreshes racing with one token both answer; exactly one answer stays live", async () => {
    for (const presentLiveOne of [true, false]) {
      const user = await seedAndLogin(ctx, "acme", "viewer");
      const answers = await Promise.all([refresh(user.refreshToken), refresh(user.refreshToken)]);
      expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
      const [live, stale] = liveAndStale(answers.map((answer) => answer.refresh_token as string));
      // The live one carries the session on; the superseded one is reuse and ends it.
      expect((await refresh(presentLiveOne ? live : stale)).status).toBe(presentLiveOne ? 200 : 400);
      expect(await sessionAlive(user)).toBe(presentLiveOne);
    }
  });
});

function lostSession(user: LoggedIn): string {
  const [, payload] = user.accessToken.split(".");
  return (JSON.parse(Buffer.from(payload as string, "base64url").toString()) as { sid: string }).sid;
}

describe("a refresh racing a disable", () => {
  test("is refused once the disable has committed, and never audited as a success after it", async () => {
    const admin = await seedAndLogin(ctx, "acme", "admin");
    for (let round = 0; round < 10; round++) {
      const user = await seedAndLogin(ctx, "acme", "viewer");
      const [refreshed, disabled] = await Promise.all([
        refresh(user.refreshToken),
        ctx.req("POST", `/v1/admin/users/${user.userId}/disable`, { headers: admin.auth }),
      ]);
      expect(disabled.status).toBe(200);
      const events = ctx
        .auditEvents()
        .filter(
          (event) =>
            (event.action === "user.disable" && event.target_id === user.userId) ||
            (event.action === "token.refresh" && event.outcome === "success" && event.target_id === lostSession(user)),
        );
      const disableAt = events.findIndex((event) => event.action === "user.disable");
      expect(events.slice(disableAt + 1)).toEqual([]);
      if (refreshed.status === 200) expect(disableAt).toBeGreaterThan(0);
      else expect(refreshed.status).toBe(400);
    }
  });
});

/** Of two refresh tokens a retry gave out: the one the store holds unused, and the superseded one. */
function liveAndStale(tokens: string[]): [string, string] {
  const unused = (token: string) =>
    ctx.deps.db.$client
      .query<{ used_at: number | null }, [string]>("SELECT used_at FROM refresh_tokens WHERE hash = ?")
      .get(sha256Hex(token))?.used_at === null;
  const live = tokens.filter(unused);
  expect(live).toHaveLength(1);
  return [live[0] as string, tokens.find((token) => !unused(token)) as string];
}
