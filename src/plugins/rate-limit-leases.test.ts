import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { loadConfig } from "../config";
import { type Clock, ManualClock, systemClock } from "../lib/clock";
import { createLogger } from "../lib/logger";
import { RedisKeys } from "../lib/redis-keys";
import { waitFor } from "../testing/ports";
import { startRedis, type TestRedis } from "../testing/redis";
import { createMetrics } from "./metrics";
import { RateLimiter } from "./rate-limiter";

// Tokens a process takes from Redis beyond what a call asks for, to decide a busy principal's
// next requests in process (src/plugins/rate-limiter.ts, MAX_LEASE): against a real redis-server.
describe("tokens leased from Redis for a busy principal", () => {
  let redis: TestRedis;
  let client: Redis;
  const PER_MINUTE = 1000; // leases 1 % of the limit: 10 tokens
  const key = (who: string) => RedisKeys.rateLimit("api", "lease", who);
  const limiterOf = (clock: Clock = new ManualClock()) =>
    new RateLimiter(
      loadConfig({ NODE_ENV: "test", RATE_LIMIT_PER_MINUTE: String(PER_MINUTE) }).rateLimit,
      client,
      clock,
      createMetrics(),
      createLogger("error"),
    );
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    await waitFor(async () => client.status === "ready", 5000, "the client to reach redis");
  });
  afterAll(async () => {
    client.disconnect();
    await redis.stop();
  });
  const remainingOf = (decisions: unknown[]) => decisions.map((d) => (d as { remaining: number }).remaining);

  test("decide the next requests in process, counting down exactly as one call each would", async () => {
    const limiter = limiterOf();
    const first = await Promise.all([limiter.decideKey("api", key("a")), limiter.decideKey("api", key("a"))]);
    expect(remainingOf(first)).toEqual([999, 998]);
    // A principal's first call in a while takes what its turn asks for and no lease.
    expect(Number(await client.pttl(key("a")))).toBeLessThanOrEqual(2 * 60);
    // Calling again within a second, it is busy: the call takes its one and ten more.
    expect((await limiter.decideKey("api", key("a"))).remaining).toBe(997);
    expect(Number(await client.pttl(key("a")))).toBeGreaterThan(12 * 60);
    const leased = Array.from({ length: 10 }, () => limiter.decideKey("api", key("a")));
    expect(leased.some((decision) => decision instanceof Promise)).toBe(false);
    expect(remainingOf(leased)).toEqual([996, 995, 994, 993, 992, 991, 990, 989, 988, 987]);
    expect(leased.every((d) => (d as { allowed: boolean }).allowed)).toBe(true);
    // Spent: the next one asks Redis again.
    const next = limiter.decideKey("api", key("a"));
    expect(next).toBeInstanceOf(Promise);
    expect((await next).remaining).toBe(986);
  });

  test("ask for the next lease once half of one is used, so a steady principal's requests never wait", async () => {
    const limiter = limiterOf();
    await limiter.decideKey("api", key("steady"));
    // Busy now: this call takes its one and a lease of ten.
    expect((await limiter.decideKey("api", key("steady"))).remaining).toBe(998);
    const firstHalf = Array.from({ length: 5 }, () => limiter.decideKey("api", key("steady")));
    expect(firstHalf.some((decision) => decision instanceof Promise)).toBe(false);
    // Half used: the next ten are asked for at the end of this turn, while five are left.
    await waitFor(async () => Number(await client.pttl(key("steady"))) > 20 * 60, 2000, "the next lease");
    const rest = Array.from({ length: 15 }, () => limiter.decideKey("api", key("steady")));
    expect(rest.some((decision) => decision instanceof Promise)).toBe(false);
    // Counted down as one call each would, across both leases.
    expect(remainingOf([...firstHalf, ...rest])).toEqual(Array.from({ length: 20 }, (_, i) => 997 - i));
  });

  const limiterWith = (env: Record<string, string>) =>
    new RateLimiter(
      loadConfig({ NODE_ENV: "test", RATE_LIMIT_PER_MINUTE: String(PER_MINUTE), ...env }).rateLimit,
      client,
      new ManualClock(),
      createMetrics(),
      createLogger("error"),
    );
  const scriptCalls = async () =>
    Number(/cmdstat_evalsha:calls=(\d+)/.exec(await client.info("commandstats"))?.[1] ?? 0) +
    Number(/cmdstat_eval:calls=(\d+)/.exec(await client.info("commandstats"))?.[1] ?? 0);

  test("a lease too small to renew ahead (under 4 tokens) asks Redis once a lease, not once a request", async () => {
    const limiter = limiterWith({ RATE_LIMIT_PER_MINUTE: "150" }); // a lease of 1
    await limiter.decideKey("api", key("small"));
    await client.config("RESETSTAT");
    for (let i = 0; i < 10; i++) {
      await limiter.decideKey("api", key("small"));
      await Bun.sleep(2); // a turn each, as requests apart would come
    }
    // Each call takes one request's token and one leased: five calls, not ten.
    expect(await scriptCalls()).toBeLessThanOrEqual(6);
  });

  test("a lease whose renewal was granted nothing asks no more until it is spent", async () => {
    const limiter = limiterOf();
    await limiter.decideKey("api", key("dry"));
    await limiter.decideKey("api", key("dry")); // busy: a lease of ten
    // Another process takes what the bucket holds.
    const other = limiterOf();
    for (let i = 0; i < 2000 && (await other.decideKey("api", key("dry"))).allowed; i++);
    await client.config("RESETSTAT");
    const spent = [];
    for (let i = 0; i < 10; i++) {
      spent.push(limiter.decideKey("api", key("dry")));
      await Bun.sleep(5);
    }
    expect(spent.some((decision) => decision instanceof Promise)).toBe(false);
    // One renewal (half used), granted nothing or nearly: not one more a request.
    expect(await scriptCalls()).toBeLessThanOrEqual(2);
  });

  test("a renewal that times out leaves the lease's tokens to spend, the fallback reported", async () => {
    const limiter = limiterWith({ RATE_LIMIT_REDIS_TIMEOUT_MS: "50" });
    const probe = new Redis(redis.url);
    try {
      await limiter.decideKey("api", key("slow"));
      expect((await limiter.decideKey("api", key("slow"))).remaining).toBe(998); // a lease of ten
      // Connected first: its connect and ready check were still under way when DEBUG SLEEP was sent.
      await probe.ping();
      const sleeping = probe.call("DEBUG", "SLEEP", "0.3").catch(() => undefined);
      await Bun.sleep(10);
      // Half the lease used: its renewal goes to a Redis that does not answer in time.
      const half = Array.from({ length: 5 }, () => limiter.decideKey("api", key("slow")));
      await waitFor(async () => limiter.fallbackActive, 2000, "the fallback");
      const rest = Array.from({ length: 5 }, () => limiter.decideKey("api", key("slow")));
      expect([...half, ...rest].some((decision) => decision instanceof Promise)).toBe(false);
      // Counted down from the lease Redis granted, not from a fresh local bucket (999).
      expect(remainingOf([...half, ...rest])).toEqual(Array.from({ length: 10 }, (_, i) => 997 - i));
      await sleeping;
    } finally {
      probe.disconnect();
    }
  });

  test("a principal calling less than once a second pays for no lease (its bucket counts its requests)", async () => {
    const clock = new ManualClock();
    const limiter = limiterOf(clock);
    const seen = [];
    for (let i = 0; i < 5; i++) {
      seen.push((await limiter.decideKey("api", key("quiet"))).remaining);
      clock.advance(1100);
    }
    // Redis's clock hardly moved: five requests took five tokens, not five leases of ten more.
    expect(seen).toEqual([999, 998, 997, 996, 995]);
    expect(Number(await client.pttl(key("quiet")))).toBeLessThanOrEqual(5 * 60);
  });

  test("another process sharing Redis sees the leased tokens as taken, and is never over-admitted", async () => {
    const [one, two] = [limiterOf(), limiterOf()];
    await one.decideKey("api", key("b"));
    await one.decideKey("api", key("b"));
    // Ten tokens sit with the first process, busy; the second gets what is left.
    expect((await two.decideKey("api", key("b"))).remaining).toBe(1000 - 12 - 1);
    let allowed = 3;
    for (let turn = 0; turn < 200 && allowed < PER_MINUTE + 50; turn++) {
      const decisions = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? one : two).decideKey("api", key("b"))),
      );
      allowed += decisions.filter((d) => d.allowed).length;
    }
    // Redis's own refill during the loop may add a token or two, never a whole lease more.
    expect(allowed).toBeGreaterThanOrEqual(PER_MINUTE - 20);
    expect(allowed).toBeLessThanOrEqual(PER_MINUTE + 5);
  });

  test("requests asked while a principal's call is on its way wait for its lease instead of taking another", async () => {
    const limiter = limiterWith({ RATE_LIMIT_REDIS_TIMEOUT_MS: "2000" });
    const probe = new Redis(redis.url);
    try {
      expect((await limiter.decideKey("api", key("w"))).remaining).toBe(999); // busy from now on
      // Connected first: its connect and ready check were still under way when DEBUG SLEEP was sent.
      await probe.ping();
      // Redis busy for 100 ms: the next call waits behind it, and five more requests come meanwhile.
      const sleeping = probe.call("DEBUG", "SLEEP", "0.1");
      await Bun.sleep(10);
      const first = limiter.decideKey("api", key("w"));
      await Bun.sleep(10);
      const later = [];
      for (let i = 0; i < 5; i++) {
        later.push(limiter.decideKey("api", key("w")));
        await Bun.sleep(2);
      }
      await sleeping;
      const decided = await Promise.all([first, ...later]);
      // The warm-up's token came back while Redis slept (one every 60 ms), or nearly did.
      const top = remainingOf(decided)[0] as number;
      expect([998, 999]).toContain(top);
      expect(remainingOf(decided)).toEqual([0, 1, 2, 3, 4, 5].map((i) => top - i));
      // One call took the one request and a lease of ten, which served the five that waited.
      expect(Number(await client.pttl(key("w")))).toBeLessThanOrEqual(12 * 60);
      const rest = Array.from({ length: 5 }, () => limiter.decideKey("api", key("w")));
      expect(rest.some((d) => d instanceof Promise)).toBe(false);
      expect(remainingOf(rest)).toEqual([6, 7, 8, 9, 10].map((i) => top - i));
    } finally {
      probe.disconnect();
    }
  });

  test("a principal's concurrent requests get its whole quota, less at most one unused lease", async () => {
    const limiter = limiterOf(systemClock);
    const workers = Array.from({ length: 20 }, async () => {
      let allowed = 0;
      for (let i = 0; i < 60; i++) {
        if ((await limiter.decideKey("api", key("burst"))).allowed) allowed++;
        await Bun.sleep(Math.random() * 3);
      }
      return allowed;
    });
    const allowed = (await Promise.all(workers)).reduce((a, b) => a + b, 0);
    // 1 200 asked of a quota of 1 000 (the refill over the run is a token or two).
    expect(allowed).toBeGreaterThanOrEqual(PER_MINUTE - 10);
    expect(allowed).toBeLessThanOrEqual(PER_MINUTE + 5);
  });

  test("give unused tokens up after a second, and never lease below 100 a minute", async () => {
    const clock = new ManualClock();
    const limiter = limiterOf(clock);
    await limiter.decideKey("api", key("c"));
    await limiter.decideKey("api", key("c"));
    expect(limiter.decideKey("api", key("c"))).not.toBeInstanceOf(Promise);
    clock.advance(1000);
    expect(limiter.decideKey("api", key("c"))).toBeInstanceOf(Promise);
    const small = new RateLimiter(
      loadConfig({ NODE_ENV: "test", RATE_LIMIT_PER_MINUTE: "99" }).rateLimit,
      client,
      clock,
      createMetrics(),
      createLogger("error"),
    );
    await small.decideKey("api", key("d"));
    await small.decideKey("api", key("d"));
    const again = small.decideKey("api", key("d"));
    expect(again).toBeInstanceOf(Promise);
    expect((await again).remaining).toBe(96);
  });
});
