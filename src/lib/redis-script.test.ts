import { beforeAll, describe, expect, test } from "bun:test";
import type { Redis } from "ioredis";
import { useRedisWithClient } from "../testing/redis";
import { RedisScript } from "./redis-script";

describe("RedisScript", () => {
  const harness = useRedisWithClient();
  let redis: Redis;
  beforeAll(() => {
    redis = harness.client();
  });

  const append = new RedisScript("return redis.call('APPEND', KEYS[1], ARGV[1])");

  test("should run with its keys and arguments, and again after Redis forgot it (NOSCRIPT → EVAL)", async () => {
    expect(await append.run(redis, ["script-test"], ["ab"])).toBe(2);
    await redis.script("FLUSH");
    expect(await redis.script("EXISTS", "0".repeat(40))).toEqual([0]);
    expect(await append.run(redis, ["script-test"], ["cd"])).toBe(4);
    expect(await redis.get("script-test")).toBe("abcd");
    // Loaded again by the EVAL: the next call is an EVALSHA that succeeds.
    expect(await append.run(redis, ["script-test"], ["e"])).toBe(5);
  });

  test("should pass any other error on, without running the script twice", async () => {
    const failing = new RedisScript("redis.call('INCR', KEYS[1]); return redis.error_reply('refused')");
    await redis.del("script-failing");
    await expect(failing.run(redis, ["script-failing"], [])).rejects.toThrow("refused");
    // EVALSHA answered NOSCRIPT (never loaded), EVAL ran it once; the error is not retried.
    expect(await redis.get("script-failing")).toBe("1");
  });
});
