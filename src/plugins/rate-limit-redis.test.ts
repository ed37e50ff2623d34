import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { loadConfig } from "../config";
import { systemClock } from "../lib/clock";
import { createLogger } from "../lib/logger";
import { RedisKeys } from "../lib/redis-keys";
import { READINESS_REUSE_MS } from "../modules/health/service";
import { createTestContext } from "../testing/app";
import { seedAndLogin } from "../testing/identity";
import { waitFor } from "../testing/ports";
import { startRedis, type TestRedis } from "../testing/redis";
import { startServer, type TestServer } from "../testing/server";
import { createMetrics } from "./metrics";
import { RateLimiter } from "./rate-limiter";

const AUTH_LIMIT = 4;

describe("rate limits shared through Redis by two server processes", () => {
  let redis: TestRedis;
  let servers: TestServer[];
  beforeAll(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, RATE_LIMIT_AUTH_PER_MINUTE: String(AUTH_LIMIT) };
    servers = await Promise.all([startServer({ env }), startServer({ env })]);
    for (const server of servers) await waitFor(() => redisReady(server), 10_000, "servers to reach redis");
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await redis.stop();
  });

  const revoke = (server: TestServer) =>
    server.fetch("/v1/auth/revoke", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "token=unknown",
    });
  /** `count` requests spread over both servers, in turn. */
  const alternate = async (count: number) => {
    const statuses: number[] = [];
    for (let i = 0; i < count; i++) statuses.push((await revoke(servers[i % 2] as TestServer)).status);
    return statuses;
  };
  const metric = async (server: TestServer, name: string) => {
    const text = await (await server.fetch("/metrics")).text();
    return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
  };

  test("should enforce one limit across both processes", async () => {
    const statuses = await alternate(2 * AUTH_LIMIT);
    expect(statuses.filter((s) => s === 200)).toHaveLength(AUTH_LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(AUTH_LIMIT);
    expect(statuses.slice(0, AUTH_LIMIT)).toEqual(Array(AUTH_LIMIT).fill(200));
    for (const server of servers) expect(await metric(server, "rate_limit_fallback_active")).toBe(0);
  });

  test("should decide in process, within the same request, when Redis hangs", async () => {
    const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    try {
      await probe.ping();
      const sleeping = probe.call("DEBUG", "SLEEP", "1").catch(() => undefined);
      await Bun.sleep(50);
      const started = performance.now();
      const res = await revoke(servers[0] as TestServer);
      expect(performance.now() - started).toBeLessThan(500);
      // The shared quota is spent, but this process's own quota is fresh: never unlimited, never 5xx.
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit")).toBe(`"auth";r=${AUTH_LIMIT - 1};t=15`);
      expect(await metric(servers[0] as TestServer, "rate_limit_fallback_active")).toBe(1);
      await sleeping;
    } finally {
      probe.disconnect();
    }
  });

  test("should keep limiting in process, without 5xx, when Redis is killed mid-stream", async () => {
    // Each process now limits on its own: a local quota each, never unlimited.
    const [statuses] = await Promise.all([alternate(4 * AUTH_LIMIT), Bun.sleep(5).then(() => redis.kill())]);
    expect(statuses).toHaveLength(4 * AUTH_LIMIT);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(2 * AUTH_LIMIT);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2 * AUTH_LIMIT);
    for (const server of servers) {
      expect(await metric(server, "rate_limit_fallback_active")).toBe(1);
      expect(await metric(server, "redis_up")).toBe(0);
      expect((await server.fetch("/ready")).status).toBe(200);
    }
  });

  test("should share the limit again once Redis is back", async () => {
    await redis.start();
    for (const server of servers) await waitFor(() => redisReady(server), 10_000, "servers to reconnect");
    // Back with the reconnection, before any limited request: a quiet process must not keep alerting.
    for (const server of servers) {
      await waitFor(
        async () => (await metric(server, "rate_limit_fallback_active")) === 0,
        5000,
        "the fallback gauge to clear",
      );
    }
    // ioredis re-sends a command that was in flight when Redis died (maxRetriesPerRequest: 1), so
    // a decision already made locally may also land in the new Redis. Start from a clean slate.
    await Bun.sleep(200);
    const probe = new Redis(redis.url);
    await probe.flushall();
    probe.disconnect();
    const statuses = await alternate(2 * AUTH_LIMIT);
    expect(statuses.slice(0, AUTH_LIMIT)).toEqual(Array(AUTH_LIMIT).fill(200));
    expect(statuses.filter((s) => s === 200)).toHaveLength(AUTH_LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(AUTH_LIMIT);
    for (const server of servers) {
      expect(await metric(server, "rate_limit_fallback_active")).toBe(0);
      expect(await metric(server, "redis_up")).toBe(1);
    }
  });
});

async function redisReady(server: TestServer): Promise<boolean> {
  const body = (await (await server.fetch("/ready")).json()) as { status: string };
  return body.status === "ready";
}

describe("decisions asked through Redis in one event-loop turn", () => {
  let redis: TestRedis;
  let client: Redis;
  let limiter: RateLimiter;
  const PER_MINUTE = 5;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    await waitFor(async () => client.status === "ready", 5000, "the client to reach redis");
    const config = loadConfig({ NODE_ENV: "test", RATE_LIMIT_PER_MINUTE: String(PER_MINUTE) }).rateLimit;
    limiter = new RateLimiter(config, client, systemClock, createMetrics(), createLogger("error"));
  });
  afterAll(async () => {
    client.disconnect();
    await redis.stop();
  });

  test("go to Redis together and are decided in the order asked, per principal and across tenants", async () => {
    const key = (tenant: string, who: string) => RedisKeys.rateLimit("api", tenant, who);
    await client.config("RESETSTAT");
    const asked = [
      ...Array.from({ length: PER_MINUTE + 2 }, () => limiter.decideKey("api", key("t1", "alice"))),
      limiter.decideKey("api", key("t1", "bob")),
      limiter.decideKey("api", key("t2", "alice")),
    ];
    expect(asked.every((decision) => decision instanceof Promise)).toBe(true);
    const decided = await Promise.all(asked);
    const alice = decided.slice(0, PER_MINUTE + 2);
    expect(alice.map((d) => d.allowed)).toEqual([true, true, true, true, true, false, false]);
    expect(alice.map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0]);
    expect(alice[PER_MINUTE]?.retryAfterMs).toBeGreaterThan(0);
    // Another principal and the same principal in another tenant keep their own quota.
    expect(decided.slice(PER_MINUTE + 2).map((d) => d.remaining)).toEqual([4, 4]);
    // One script call per tenant (each maybe retried once as EVAL while Redis loads the script).
    const stats = await client.info("commandstats");
    const calls = [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(4);
    // What Redis holds agrees: the next decision, in a later turn, is still refused.
    expect(((await limiter.decideKey("api", key("t1", "alice"))) as { allowed: boolean }).allowed).toBe(false);
    expect(await client.pttl(key("t1", "alice"))).toBeGreaterThan(0);
  });
});

describe("the lean path limited through Redis", () => {
  test("answers the allowed requests with their headers and refuses the rest, concurrent or not", async () => {
    const redis = await startRedis();
    const ctx = await createTestContext({ REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: "3" });
    try {
      await waitFor(async () => ctx.deps.redis?.status === "ready", 5000, "the app to reach redis");
      const viewer = await seedAndLogin(ctx, "rl-lean", "viewer");
      const me = () => ctx.req("GET", "/v1/auth/me", { headers: viewer.auth });
      const concurrent = await Promise.all([me(), me()]);
      expect(concurrent.map((r) => r.status)).toEqual([200, 200]);
      expect(concurrent.map((r) => r.headers.get("x-ratelimit-remaining")).sort()).toEqual(["1", "2"]);
      expect(concurrent[0]?.headers.get("ratelimit-policy")).toBe('"api";q=3;w=60');
      const [third, fourth] = [await me(), await me()];
      expect(third?.status).toBe(200);
      expect(third?.headers.get("ratelimit")).toMatch(/^"api";r=0;t=\d+$/);
      expect(fourth?.status).toBe(429);
      expect(Number(fourth?.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(((await (fourth as Response).json()) as { type: string }).type).toBe("urn:warden:problem:rate-limited");
      expect(ctx.deps.rateLimiter?.fallbackActive).toBe(false);
    } finally {
      await ctx.close();
      await redis.stop();
    }
  });
});

describe("a Redis that hangs and resumes without dropping the connection", () => {
  test("is reported down while it hangs and back once it answers, with no reconnect to say so", async () => {
    const redis = await startRedis();
    const ctx = await createTestContext({ REDIS_URL: redis.url });
    const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    try {
      await waitFor(async () => ctx.deps.redis?.status === "ready", 5000, "the app to reach redis");
      const viewer = await seedAndLogin(ctx, "rl-hang", "viewer");
      const redisUp = async () => (await ctx.deps.metrics.redisUp.get()).values[0]?.value;
      await probe.ping();
      const sleeping = probe.call("DEBUG", "SLEEP", "1").catch(() => undefined);
      await Bun.sleep(50);
      expect((await ctx.req("GET", "/v1/auth/me", { headers: viewer.auth })).status).toBe(200);
      expect(ctx.deps.rateLimiter?.fallbackActive).toBe(true);
      ctx.clock.advance(READINESS_REUSE_MS);
      // The scrape that finds it hanging says so (not the one after).
      expect(await (await ctx.req("GET", "/metrics")).text()).toContain("\nredis_up 0\n");
      expect(await redisUp()).toBe(0);

      await sleeping;
      expect(ctx.deps.redis?.status).toBe("ready");
      expect(ctx.deps.rateLimiter?.fallbackActive).toBe(true);
      // Answering, but slower than a decision may wait: the fallback stays.
      const slow = probe.call("DEBUG", "SLEEP", "0.15").catch(() => undefined);
      await Bun.sleep(20);
      ctx.clock.advance(READINESS_REUSE_MS);
      expect((await ctx.deps.readiness.check()).status).toBe("ready");
      expect(ctx.deps.rateLimiter?.fallbackActive).toBe(true);
      await slow;
      ctx.clock.advance(READINESS_REUSE_MS);
      expect((await ctx.deps.readiness.check()).status).toBe("ready");
      expect(await redisUp()).toBe(1);
      expect(ctx.deps.rateLimiter?.fallbackActive).toBe(false);
    } finally {
      probe.disconnect();
      await ctx.close();
      await redis.stop();
    }
  });
});
