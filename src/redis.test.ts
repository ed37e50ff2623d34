import { beforeAll, describe, expect, test } from "bun:test";
import diagnostics from "node:diagnostics_channel";
import type { Redis } from "ioredis";
import { createLogger } from "./lib/logger";
import { createRedis } from "./redis";
import { waitFor } from "./testing/ports";
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

  test("should warn at connection when Redis may evict keys, and not when it may not", async () => {
    const connectAndRead = async () => {
      const lines: string[] = [];
      const log = createLogger("info", { write: (line: string) => void lines.push(line) });
      const other = createRedis(`redis://127.0.0.1:${redis.options.port}`, log);
      await other.connect();
      await waitFor(() => lines.some((line) => line.includes("redis connected")), 5000, "the connection");
      await other.config("GET", "maxmemory-policy"); // queued after the check's own CONFIG GET
      other.disconnect();
      return lines.filter((line) => line.includes("maxmemory_policy"));
    };
    expect(await connectAndRead()).toEqual([]);
    await redis.config("SET", "maxmemory-policy", "allkeys-lru");
    try {
      const warnings = await connectAndRead();
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: "warn", maxmemory_policy: "allkeys-lru" });
    } finally {
      await redis.config("SET", "maxmemory-policy", "noeviction");
    }
  });
});
