import { Redis } from "ioredis";
import type { Logger } from "./lib/logger";

/**
 * A Redis client that never blocks a request on an outage: no offline queue (commands fail at
 * once while disconnected, so callers fall back), bounded retries per command, and reconnects
 * forever with capped backoff.
 */
export function createRedis(url: string, log: Logger): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 6), 5000),
  });
  let wasReady = false;
  redis.on("ready", () => {
    wasReady = true;
    log.info("redis connected");
  });
  redis.on("error", (error) => {
    if (wasReady) log.warn({ err: { message: error.message } }, "redis unavailable");
    wasReady = false;
  });
  return redis;
}
