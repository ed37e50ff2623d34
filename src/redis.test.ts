import { beforeAll, describe, expect, test } from "bun:test";
import diagnostics from "node:diagnostics_channel";
import type { Redis } from "ioredis";
import { useRedisWithClient } from "./testing/redis";

describe("createRedis", () => {
  const harness = useRedisWithClient();
  let redis: Redis;
  beforeAll(() => {
    redis = harness.client();
  });

  test("should tell ioredis nobody traces commands, and still trace them for a subscriber", async () => {
    const channel = diagnostics.tracingChannel("ioredis:command") as unknown as { hasSubscribers: boolean };
    expect(channel.hasSubscribers).toBe(false);
    const seen: string[] = [];
    const start = (message: unknown) => seen.push((message as { command: string }).command);
    diagnostics.subscribe("tracing:ioredis:command:start", start);
    try {
      expect(channel.hasSubscribers).toBe(true);
      expect(await redis.set("warden:test:traced", "1")).toBe("OK");
      expect(seen).toContain("set");
    } finally {
      diagnostics.unsubscribe("tracing:ioredis:command:start", start);
    }
    expect(channel.hasSubscribers).toBe(false);
    expect(await redis.get("warden:test:traced")).toBe("1");
    expect(seen.filter((command) => command === "get")).toEqual([]);
  });
});
