import type { Redis } from "ioredis";
import type { Config } from "../config";
import type { Clock } from "../lib/clock";
import { withinDeadline } from "../lib/deadline";
import { type Decision, LocalGcra } from "../lib/gcra";
import type { Logger } from "../lib/logger";
import { RedisKeys } from "../lib/redis-keys";
import type { Metrics } from "./metrics";

export type RouteClass = "auth" | "api";

const PERIOD_MS = 60_000;
/** After Redis failed or timed out, the local limiter decides alone this long before Redis is tried again. */
const REDIS_RETRY_AFTER_MS = 1000;

/**
 * GCRA in one atomic script: read the TAT, decide, store the new TAT with a TTL of exactly the
 * time it takes to refill (so idle keys vanish). Time comes from the Redis server, so every node
 * sharing the limit agrees on "now" whatever their clocks say. Returns
 * {allowed, remaining, retry_after_ms, reset_ms}.
 */
const GCRA_SCRIPT = `
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ahead = tat + interval - now
if ahead <= period then
  redis.call('SET', KEYS[1], string.format('%.3f', tat + interval), 'PX', math.ceil(ahead))
  return {1, math.floor((period - ahead) / interval + 1e-9), 0, math.ceil(ahead)}
end
return {0, 0, math.ceil(ahead - period), math.ceil(tat - now)}
`;

type GcraReply = [number, number, number, number];

interface RedisWithGcra extends Redis {
  wardenGcra(key: string, interval: string, period: string): Promise<GcraReply>;
}

/**
 * One decision per request: Redis (shared by every node) when it is configured and answering,
 * the in-process limiter otherwise. A Redis that errors or does not answer within
 * RATE_LIMIT_REDIS_TIMEOUT_MS is replaced by the local limiter for that same request and for
 * the next second; a Redis that is disconnected is not waited for at all. Never "unlimited".
 */
export class RateLimiter {
  private readonly local = new LocalGcra();
  private readonly redis: RedisWithGcra | undefined;
  private retryRedisAt = 0;
  private fallback = false;
  private readonly limits: Record<RouteClass, number>;
  private readonly counters: Record<RouteClass, { allowed: { inc(): void }; limited: { inc(): void } }>;

  constructor(
    private readonly config: Config["rateLimit"],
    redis: Redis | undefined,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.limits = { auth: config.authPerMinute, api: config.perMinute };
    const counter = (routeClass: RouteClass, decision: "allowed" | "limited") =>
      metrics.rateLimitTallies.of({ class: routeClass, decision });
    this.counters = {
      auth: { allowed: counter("auth", "allowed"), limited: counter("auth", "limited") },
      api: { allowed: counter("api", "allowed"), limited: counter("api", "limited") },
    };
    if (redis) {
      redis.defineCommand("wardenGcra", { numberOfKeys: 1, lua: GCRA_SCRIPT });
      this.redis = redis as RedisWithGcra;
      // A reconnect ends the back-off at once: the shared limit matters more than the pause.
      redis.on("ready", () => {
        this.retryRedisAt = 0;
      });
    }
    metrics.rateLimitFallback.set(0);
  }

  limitOf(routeClass: RouteClass): number {
    return this.limits[routeClass];
  }

  /** Synchronous when decided in process; a promise while Redis is asked. */
  decide(routeClass: RouteClass, tenant: string, principal: string): Decision | Promise<Decision> {
    return this.decideKey(routeClass, RedisKeys.rateLimit(routeClass, tenant, principal));
  }

  /** `decide` for a key the caller built (and may keep: a principal's key is the same on every request). */
  decideKey(routeClass: RouteClass, key: string): Decision | Promise<Decision> {
    const limit = this.limits[routeClass];
    const redis = this.redis;
    if (redis?.status !== "ready" || performance.now() < this.retryRedisAt) {
      if (redis) this.setFallback(true, redis.status !== "ready" ? `redis ${redis.status}` : undefined);
      return this.count(routeClass, this.local.decide(key, limit, PERIOD_MS, this.clock.now()));
    }
    return withinDeadline(
      redis.wardenGcra(key, String(PERIOD_MS / limit), String(PERIOD_MS)),
      this.config.redisTimeoutMs,
    ).then(
      ([allowed, remaining, retryAfterMs, resetMs]) => {
        this.setFallback(false);
        return this.count(routeClass, { allowed: allowed === 1, limit, remaining, retryAfterMs, resetMs });
      },
      (error: Error) => {
        this.retryRedisAt = performance.now() + REDIS_RETRY_AFTER_MS;
        this.setFallback(true, error.message);
        return this.count(routeClass, this.local.decide(key, limit, PERIOD_MS, this.clock.now()));
      },
    );
  }

  get fallbackActive(): boolean {
    return this.fallback;
  }

  private count(routeClass: RouteClass, decision: Decision): Decision {
    this.counters[routeClass][decision.allowed ? "allowed" : "limited"].inc();
    return decision;
  }

  private setFallback(active: boolean, reason?: string): void {
    if (active === this.fallback) return;
    this.fallback = active;
    this.metrics.rateLimitFallback.set(active ? 1 : 0);
    if (active) this.log.warn({ reason }, "rate limits decided in process until Redis answers again");
    else this.log.info("rate limits shared through Redis again");
  }
}
