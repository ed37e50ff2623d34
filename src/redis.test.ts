import { beforeAll, describe, expect, test } from "bun:test";
import diagnostics from "node:diagnostics_channel";
import type { Redis } from "ioredis";
import { createLogger } from "./lib/logger";
import { createRedis } from "./redis";
import { freePort, waitFor } from "./testing/ports";
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

  describe("at start-up, a Redis it cannot reach", () => {
    /** The lines a fresh client logs while failing to connect to `url` for a few retries. */
    const startupLines = async (url: string) => {
      const lines: string[] = [];
      const log = createLogger("info", { write: (line: string) => void lines.push(line) });
      const other = createRedis(url, log);
      await other.connect().catch(() => {});
      await waitFor(() => lines.length > 0, 5000, "a start-up warning");
      await Bun.sleep(500); // two retries, which must not repeat it
      other.disconnect();
      return lines;
    };

    test("should be logged once with the cause: a refused port", async () => {
      const port = await freePort();
      const lines = await startupLines(`redis://127.0.0.1:${port}`);
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0] as string)).toMatchObject({
        level: "warn",
        msg: "redis not reachable at start-up",
        redis: `127.0.0.1:${port}`,
        err: { code: "ECONNREFUSED" },
      });
    });

    test("should be logged with the server's refusal of a missing or wrong password, never the password", async () => {
      const port = redis.options.port;
      await redis.config("SET", "requirepass", "the-right-one");
      try {
        const [noPassword] = await startupLines(`redis://127.0.0.1:${port}`);
        expect(JSON.parse(noPassword as string).err.message).toStartWith("NOAUTH");
        const wrong = await startupLines(`redis://:not-the-password@127.0.0.1:${port}`);
        expect(wrong).toHaveLength(1);
        expect(JSON.parse(wrong[0] as string)).toMatchObject({ redis: `127.0.0.1:${port}` });
        expect(JSON.parse(wrong[0] as string).err.message).toStartWith("WRONGPASS");
        expect(wrong.join("\n")).not.toContain("not-the-password");
        const user = await startupLines(`redis://someone:not-the-password@127.0.0.1:${port}`);
        expect(user.join("\n")).toContain("WRONGPASS");
        expect(user.join("\n")).not.toContain("not-the-password");
      } finally {
        await redis.config("SET", "requirepass", "");
      }
    });
  });
});
