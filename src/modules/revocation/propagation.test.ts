import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { type CreatedAdmin, createAdminWithCli, passwordLogin } from "../../testing/cli";
import { waitFor } from "../../testing/ports";
import { startRedis, type TestRedis } from "../../testing/redis";
import { startServer, type TestServer } from "../../testing/server";
import { REVOCATION_CHANNEL } from "./broadcast";

const PROPAGATION_LIMIT_MS = 100;

let redis: TestRedis;
let dataDir: string;
let a: TestServer;
let b: TestServer;
let victim: CreatedAdmin;
let adminToken: string;

function me(server: TestServer, token: string): Promise<Response> {
  return server.fetch("/v1/auth/me", { headers: { authorization: `Bearer ${token}` } });
}

async function tokenId(server: TestServer, token: string): Promise<string> {
  const res = await me(server, token);
  expect(res.status).toBe(200);
  return ((await res.json()) as { token_id: string }).token_id;
}

/** Polls `server` every ~5 ms from now until it refuses `token`; the milliseconds that took. */
async function msUntilRejected(server: TestServer, token: string, capMs = 2000): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < capMs) {
    const res = await me(server, token);
    if (res.status === 401) {
      expect(res.headers.get("www-authenticate")).toContain("the token has been revoked");
      return performance.now() - start;
    }
    expect(res.status).toBe(200);
    await Bun.sleep(5);
  }
  return Number.POSITIVE_INFINITY;
}

async function subscribers(): Promise<number> {
  const probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await probe.connect();
    const reply = (await probe.call("PUBSUB", "NUMSUB", REVOCATION_CHANNEL)) as [string, number];
    return Number(reply[1]);
  } catch {
    return 0;
  } finally {
    probe.disconnect();
  }
}

function redisConnects(server: TestServer): number {
  return server.logs.filter((line) => line.msg === "redis connected").length;
}

beforeAll(async () => {
  redis = await startRedis();
  dataDir = mkdtempSync(join(tmpdir(), "warden-propagation-"));
  victim = await createAdminWithCli(dataDir, { tenant: "acme", email: "a@acme.test" });
  const revoker = await createAdminWithCli(dataDir, { tenant: "acme", email: "b@acme.test" });
  // Two nodes sharing one database and one Redis, started together as a deployment would.
  // The limiter is off because the 5 ms polling below all comes from one IP.
  [a, b] = (await Promise.all(
    [1, 2].map(() => startServer({ dataDir, env: { REDIS_URL: redis.url, RATE_LIMIT_ENABLED: "false" } })),
  )) as [TestServer, TestServer];
  await waitFor(async () => (await subscribers()) >= 2, 10_000, "both nodes to subscribe to the revocation channel");
  adminToken = await passwordLogin(a, revoker);
});

afterAll(async () => {
  const stops = [a, b].filter(Boolean).map((server) => server.stop());
  expect(await Promise.all(stops)).toEqual(stops.map(() => 0));
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("revocation across two nodes", () => {
  test("a token issued by A should be accepted by both A and B", async () => {
    const token = await passwordLogin(a, victim);
    expect((await me(a, token)).status).toBe(200);
    const res = await me(b, token);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { sub: string }).sub).toBe(victim.user_id);
  });

  test(`an admin revocation of a jti on A should be enforced by B within ${PROPAGATION_LIMIT_MS} ms`, async () => {
    const token = await passwordLogin(a, victim);
    const jti = await tokenId(b, token); // B has now verified (and cached) it
    const res = await a.fetch("/v1/admin/revocations", {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ jti }),
    });
    const elapsed = await msUntilRejected(b, token);
    expect(res.status).toBe(201);
    expect(elapsed).toBeLessThan(PROPAGATION_LIMIT_MS);
    expect((await me(a, token)).status).toBe(401);
  });

  test(`a logout on A should be enforced by B within ${PROPAGATION_LIMIT_MS} ms`, async () => {
    const token = await passwordLogin(a, victim);
    expect((await me(b, token)).status).toBe(200);
    const res = await a.fetch("/v1/auth/logout", { method: "POST", headers: { authorization: `Bearer ${token}` } });
    const elapsed = await msUntilRejected(b, token);
    expect(res.status).toBe(204);
    expect(elapsed).toBeLessThan(PROPAGATION_LIMIT_MS);
    expect((await me(a, token)).status).toBe(401);
  });

  test("with Redis down, A should still revoke at once, and B should catch up from SQLite when Redis returns", async () => {
    const token = await passwordLogin(a, victim);
    expect((await me(b, token)).status).toBe(200);
    const connectsBefore = [redisConnects(a), redisConnects(b)];

    await redis.kill();
    const res = await a.fetch("/v1/auth/logout", { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(204);
    expect((await me(a, token)).status).toBe(401);
    // B cannot have heard of it: this is the gap the reload on reconnect has to close.
    expect((await me(b, token)).status).toBe(200);

    await redis.start();
    await waitFor(
      async () => (await me(b, token)).status === 401,
      15_000,
      "B to reject the token revoked during the outage",
    );

    // And live propagation works again once both nodes are back on Redis.
    await waitFor(
      async () =>
        redisConnects(a) > (connectsBefore[0] ?? 0) &&
        redisConnects(b) > (connectsBefore[1] ?? 0) &&
        (await subscribers()) >= 2,
      15_000,
      "both nodes to reconnect and resubscribe",
    );
    const next = await passwordLogin(a, victim);
    expect((await me(b, next)).status).toBe(200);
    const logout = await a.fetch("/v1/auth/logout", { method: "POST", headers: { authorization: `Bearer ${next}` } });
    const elapsed = await msUntilRejected(b, next);
    expect(logout.status).toBe(204);
    expect(elapsed).toBeLessThan(PROPAGATION_LIMIT_MS);
  });
});
