import type { Redis } from "ioredis";
import type { Config } from "../config";
import type { Clock } from "../lib/clock";
import { withinDeadline } from "../lib/deadline";
import { type Decision, LocalGcra } from "../lib/gcra";
import type { Logger } from "../lib/logger";
import { RedisKeys } from "../lib/redis-keys";
import { RedisScript } from "../lib/redis-script";
import type { Metrics } from "./metrics";

export type RouteClass = "auth" | "api";

const PERIOD_MS = 60_000;
/** After Redis failed or timed out, the local limiter decides alone this long before Redis is tried again. */
const REDIS_RETRY_AFTER_MS = 1000;

/**
 * GCRA in one atomic script, for every decision of one tenant asked during one event-loop turn:
 * per key, read the TAT, decide, store the new TAT with a TTL of exactly the time it takes to
 * refill (so idle keys vanish). The keys are handled in the order asked, so one principal's
 * requests in a batch see each other's effect exactly as separate scripts would. Time comes from
 * the Redis server, so every node sharing the limit agrees on "now" whatever their clocks say.
 *
 * KEYS: the limiter keys (all of one tenant: one hash slot). ARGV: the period (ms), then one
 * interval (ms) per key. Returns {allowed, remaining, retry_after_ms, reset_ms} per key, flat.
 */
const GCRA_SCRIPT = `
local period = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[i + 1])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local ahead = tat + interval - now
  local n = #out
  if ahead <= period then
    redis.call('SET', key, string.format('%.3f', tat + interval), 'PX', math.ceil(ahead))
    out[n + 1] = 1
    out[n + 2] = math.floor((period - ahead) / interval + 1e-9)
    out[n + 3] = 0
    out[n + 4] = math.ceil(ahead)
  else
    out[n + 1] = 0
    out[n + 2] = 0
    out[n + 3] = math.ceil(ahead - period)
    out[n + 4] = math.ceil(tat - now)
  end
end
return out
`;

const REPLY_FIELDS = 4;
/** More decisions than this in one turn for one tenant go in another script call. */
const MAX_BATCH = 128;

const GCRA = new RedisScript(GCRA_SCRIPT);

interface Asked {
  readonly routeClass: RouteClass;
  readonly key: string;
  readonly resolve: (decision: Decision) => void;
}

/** The hash tag (`{tenant}`) of a limiter key: the keys one script call may touch together. */
function slotOf(key: string): string {
  const open = key.indexOf("{");
  return key.slice(open, key.indexOf("}", open) + 1);
}

/**
 * One decision per request: Redis (shared by every node) when it is configured and answering,
 * the in-process limiter otherwise. A Redis that errors or does not answer within
 * RATE_LIMIT_REDIS_TIMEOUT_MS is replaced by the local limiter for that same request and for
 * the next second; a Redis that is disconnected is not waited for at all. Never "unlimited".
 */
export class RateLimiter {
  private readonly local = new LocalGcra();
  private readonly redis: Redis | undefined;
  private retryRedisAt = 0;
  /** Decisions asked through Redis this turn, by hash slot (tenant), and batches already full. */
  private readonly batches = new Map<string, Asked[]>();
  private full: Asked[][] = [];
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
      this.redis = redis;
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
    return new Promise<Decision>((resolve) => {
      const slot = slotOf(key);
      let batch = this.batches.get(slot);
      if (batch === undefined || batch.length >= MAX_BATCH) {
        // Every decision asked this turn goes out together once the turn's requests are in.
        if (this.batches.size === 0) setImmediate(this.flush);
        if (batch !== undefined) this.full.push(batch);
        batch = [];
        this.batches.set(slot, batch);
      }
      batch.push({ routeClass, key, resolve });
    });
  }

  /** One script call per tenant for the decisions asked this turn; the local limiter for each if Redis fails. */
  private readonly flush = (): void => {
    const batches = [...this.full, ...this.batches.values()];
    this.full = [];
    this.batches.clear();
    const redis = this.redis as Redis;
    for (const batch of batches) {
      const keys = batch.map((asked) => asked.key);
      const args = [String(PERIOD_MS), ...batch.map((asked) => String(PERIOD_MS / this.limits[asked.routeClass]))];
      withinDeadline(GCRA.run(redis, keys, args) as Promise<number[]>, this.config.redisTimeoutMs).then(
        (reply) => {
          this.setFallback(false);
          batch.forEach((asked, i) => {
            const [allowed, remaining, retryAfterMs, resetMs] = reply.slice(i * REPLY_FIELDS, (i + 1) * REPLY_FIELDS);
            const limit = this.limits[asked.routeClass];
            asked.resolve(
              this.count(asked.routeClass, {
                allowed: allowed === 1,
                limit,
                remaining: remaining ?? 0,
                retryAfterMs: retryAfterMs ?? 0,
                resetMs: resetMs ?? 0,
              }),
            );
          });
        },
        (error: Error) => {
          this.retryRedisAt = performance.now() + REDIS_RETRY_AFTER_MS;
          this.setFallback(true, error.message);
          const now = this.clock.now();
          for (const asked of batch) {
            const limit = this.limits[asked.routeClass];
            asked.resolve(this.count(asked.routeClass, this.local.decide(asked.key, limit, PERIOD_MS, now)));
          }
        },
      );
    }
  };

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
