import { afterAll, beforeAll } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Redis } from "ioredis";
import { createLogger } from "../lib/logger";
import { createRedis } from "../redis";
import { freePort, waitFor } from "./ports";

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGKILL) without forgetting its port, so `start` brings it back there. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function redisBinary(): string {
  const found = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).stdout.trim();
  if (!found) {
    throw new Error("redis-server is not installed: run `npm test` (it installs it) or `apt-get install redis-server`");
  }
  return found;
}

async function accepts(port: number): Promise<boolean> {
  try {
    const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}

/** A real redis-server on a free loopback port, no persistence, in its own temp dir. */
export async function startRedis(): Promise<TestRedis> {
  const binary = redisBinary();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "warden-redis-"));
  let proc: Subprocess | undefined;

  const start = async () => {
    proc = Bun.spawn(
      [
        binary,
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--enable-debug-command",
        "local",
      ],
      { stdout: "ignore", stderr: "pipe" },
    );
    await waitFor(() => accepts(port), 5000, `redis-server on port ${port}`);
  };
  const kill = async () => {
    proc?.kill("SIGKILL");
    await proc?.exited;
    proc = undefined;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    start,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * For a describe block: a test Redis started before its tests with the service's own kind of
 * client (createRedis) connected and ready, both stopped after them. Read `client()` in tests.
 */
export function useRedisWithClient(): { client(): Redis } {
  let server: TestRedis | undefined;
  let redis: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis();
    redis = createRedis(server.url, createLogger("silent"));
    await redis.connect();
    const connected = redis;
    await waitFor(() => connected.status === "ready", 5000, "redis client ready");
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });
  return {
    client() {
      if (!redis) throw new Error("the Redis client is only there while the block's tests run");
      return redis;
    },
  };
}
