import diagnostics from "node:diagnostics_channel";
import { Redis } from "ioredis";
import type { Logger } from "./lib/logger";

interface TracingChannelParts {
  readonly start: { readonly hasSubscribers: boolean };
  readonly end: { readonly hasSubscribers: boolean };
  readonly asyncStart: { readonly hasSubscribers: boolean };
  readonly asyncEnd: { readonly hasSubscribers: boolean };
  readonly error: { readonly hasSubscribers: boolean };
}

/**
 * ioredis traces every command through a diagnostics_channel TracingChannel unless the channel
 * reports `hasSubscribers === false`. Bun's TracingChannel has no `hasSubscribers` (undefined),
 * so each command paid for `tracePromise`, a context object and its sanitised arguments with
 * nobody listening. This adds Node's getter (true when any of its five channels has a
 * subscriber) where it is missing; a subscriber still sees every command.
 */
export function ensureTracingChannelHasSubscribers(): void {
  const prototype = Object.getPrototypeOf(diagnostics.tracingChannel("warden:probe")) as object;
  if ("hasSubscribers" in prototype) return;
  Object.defineProperty(prototype, "hasSubscribers", {
    configurable: true,
    get(this: TracingChannelParts) {
      return (
        this.start.hasSubscribers ||
        this.end.hasSubscribers ||
        this.asyncStart.hasSubscribers ||
        this.asyncEnd.hasSubscribers ||
        this.error.hasSubscribers
      );
    },
  });
}

/** ioredis rejects a command with "Command timed out" after this long without an answer. */
export const REDIS_COMMAND_TIMEOUT_MS = 5000;

/**
 * A Redis client that never blocks a request on an outage: no offline queue (commands fail at
 * once while disconnected, so callers fall back), bounded retries per command, and reconnects
 * forever with capped backoff.
 */
export function createRedis(url: string, log: Logger): Redis {
  ensureTracingChannelHasSubscribers();
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // A Redis that hangs (stopped, swapping) keeps the connection: without this a command waits
    // for it forever (a spool replay held shutdown until Redis came back). Longer than the
    // deadlines callers set themselves (a read's 2 s, a write's 250 ms), which answer first.
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 6), 5000),
  });
  let wasReady = false;
  let everReady = false;
  let startFailureLogged = false;
  redis.on("ready", () => {
    wasReady = true;
    log.info("redis connected");
    if (!everReady) void warnOnEviction(redis, log);
    everReady = true;
  });
  redis.on("error", (error) => {
    if (wasReady) log.warn({ err: connectionError(error) }, "redis unavailable");
    // connect() itself only rejects with "Connection is closed.": the cause (an unknown host, a
    // refused port, a wrong password) is in this event. Once: the client retries every few seconds.
    if (!everReady && !startFailureLogged) {
      log.warn({ err: connectionError(error), redis: new URL(url).host }, "redis not reachable at start-up");
      startFailureLogged = true;
    }
    wasReady = false;
  });
  return redis;
}

/**
 * What a log may say of a connection error: its message and code. Never the error itself: a
 * failed AUTH or HELLO carries its command, password included.
 */
function connectionError(error: Error): { message: string; code?: string } {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === "string" ? { message: error.message, code } : { message: error.message };
}

/**
 * Every feedback key has a TTL, so under any eviction policy but `noeviction` a full Redis drops
 * accepted feedback (and limiter state) silently; with `noeviction` a write fails and is spooled.
 * A managed Redis may refuse CONFIG: then nothing can be told.
 */
async function warnOnEviction(redis: Redis, log: Logger): Promise<void> {
  try {
    const [, policy] = (await redis.config("GET", "maxmemory-policy")) as [string, string];
    if (policy && policy !== "noeviction") {
      log.warn(
        { maxmemory_policy: policy },
        "redis may evict keys: accepted feedback and rate-limit state can vanish when it is full; set maxmemory-policy noeviction",
      );
    }
  } catch {
    // CONFIG renamed or refused: the README asks for noeviction.
  }
}
