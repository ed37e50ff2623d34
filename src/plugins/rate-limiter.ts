import type { Redis } from "ioredis";
import type { Config } from "../config";
import type { Clock } from "../lib/clock";
import { withinDeadline } from "../lib/deadline";
import { type Decision, LocalGcra } from "../lib/gcra";
import type { Logger } from "../lib/logger";
import { RedisKeys } from "../lib/redis-keys";
import { RedisScript } from "../lib/redis-script";
import type { Metrics } from "./metrics";

/** `auth`: the token endpoint, per client address; `api`: everything else under /v1, per principal. */
export type RouteClass = "auth" | "api";
/** The route classes, and `account`: password-grant attempts per account (tenant and username), from any address. */
export type LimitClass = RouteClass | "account";

const PERIOD_MS = 60_000;
/** After Redis failed or timed out, the local limiter decides alone this long before Redis is tried again. */
const REDIS_RETRY_AFTER_MS = 1000;

/**
 * GCRA in one atomic script, for every principal of one tenant asking during one event-loop turn:
 * per key, read the TAT, grant as many of the tokens wanted as the bucket holds, store the new TAT
 * with a TTL of exactly the time it takes to refill (so idle keys vanish). Granting n tokens at
 * once is exactly n decisions in a row. Time comes from the Redis server, so every node sharing
 * the limit agrees on "now" whatever their clocks say.
 *
 * KEYS: the limiter keys (all of one tenant: one hash slot). ARGV: the period (ms), then per key
 * its interval (ms) and the tokens wanted. Returns per key, flat: {granted, remaining after the
 * grant, ms until one more token would be granted (0 if one would be now), ms until the bucket
 * is full}.
 */
const GCRA_SCRIPT = `
local period = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local wanted = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local free = math.floor((period - (tat - now)) / interval + 1e-9)
  local granted = math.max(0, math.min(wanted, free))
  if granted > 0 then
    tat = tat + granted * interval
    redis.call('SET', key, string.format('%.3f', tat), 'PX', math.ceil(tat - now))
  end
  local n = #out
  out[n + 1] = granted
  out[n + 2] = math.max(0, free - granted)
  out[n + 3] = math.max(0, math.ceil(tat + interval - now - period))
  out[n + 4] = math.ceil(tat - now)
end
return out
`;

const REPLY_FIELDS = 4;
/** More principals than this in one turn for one tenant go in another script call. */
const MAX_BATCH = 128;
/**
 * Tokens a process takes from Redis beyond what a turn asks for, to decide its next requests
 * in process: 1 % of the limit (none below 100 a minute), at most MAX_LEASE. Only a busy
 * principal takes them (one whose previous call to Redis from this process is under LEASE_MS
 * old): a lease given up unused is charged to its bucket (refilled at the usual rate, in 1 % of
 * its period), and a principal calling each process less than once a second would otherwise
 * pay a lease for every request. Another process can be refused while this one holds them, so
 * they are given up after LEASE_MS. Nothing is ever over-admitted.
 */
const MAX_LEASE = 64;
const LEASE_MS = 1000;
/**
 * Leases at least this large ask for the next one when half used. A smaller one would ask on
 * nearly every request (a lease of 1 on every one), and the few requests it covers seldom wait.
 */
const MIN_RENEWED_LEASE = 4;

const GCRA = new RedisScript(GCRA_SCRIPT);

type Resolve = (decision: Decision | Promise<Decision>) => void;

/**
 * One principal's call to Redis: the decisions it carries, and those asked while it was on its
 * way (they wait for its lease rather than send a call of their own, which would ask for a
 * second lease while the first is still unused).
 */
interface Asked {
  readonly routeClass: LimitClass;
  readonly resolves: Resolve[];
  sent: boolean;
  readonly waiting: Resolve[];
}

/** Tokens granted by Redis and not used yet. */
interface Lease {
  left: number;
  /** What the shared bucket held right after the grant. */
  readonly remaining: number;
  /** When the bucket will be full again (ms, the service's clock). */
  readonly fullAt: number;
  readonly expiresAt: number;
  /** Whether the next lease was asked for (once a lease: a grant of none must not ask again on every request). */
  renewing: boolean;
}

/** The hash tag (`{tenant}`) of a limiter key: the keys one script call may touch together. */
function slotOf(key: string): string {
  const open = key.indexOf("{");
  return key.slice(open, key.indexOf("}", open) + 1);
}

/**
 * One decision per request: Redis (shared by every node) when it is configured and answering,
 * the in-process limiter otherwise. Through Redis, a busy principal's next requests are decided
 * in process from tokens granted with an earlier call (see MAX_LEASE). A Redis that errors or does not answer within
 * RATE_LIMIT_REDIS_TIMEOUT_MS is replaced by the local limiter for that same request and for
 * the next second; a Redis that is disconnected is not waited for at all. Never "unlimited".
 */
export class RateLimiter {
  private readonly local = new LocalGcra();
  private readonly redis: Redis | undefined;
  private retryRedisAt = 0;
  /** Keys with a call to Redis asked this turn or on its way: at most one per key at a time. */
  private readonly asked = new Map<string, Asked>();
  /** The keys to send this turn, by hash slot (tenant), and batches already full. */
  private readonly batches = new Map<string, string[]>();
  private full: string[][] = [];
  /** By key, oldest grant first (a renewed lease is moved to the end). */
  private readonly leases = new Map<string, Lease>();
  /** When each key last called Redis from here, oldest first; kept for LEASE_MS. */
  private readonly lastCalled = new Map<string, number>();
  private fallback = false;
  private readonly limits: Record<LimitClass, number>;
  private readonly leaseSizes: Record<LimitClass, number>;
  private readonly counters: Record<LimitClass, { allowed: { inc(): void }; limited: { inc(): void } }>;

  constructor(
    private readonly config: Config["rateLimit"],
    redis: Redis | undefined,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.limits = { auth: config.authPerMinute, api: config.perMinute, account: config.accountPerMinute };
    const leaseOf = (limit: number) => Math.min(MAX_LEASE, Math.floor(limit / 100));
    // An account's attempts come from anywhere and are few: every one is Redis's own decision.
    this.leaseSizes = { auth: leaseOf(config.authPerMinute), api: leaseOf(config.perMinute), account: 0 };
    const counter = (routeClass: LimitClass, decision: "allowed" | "limited") =>
      metrics.rateLimitTallies.of({ class: routeClass, decision });
    this.counters = {
      auth: { allowed: counter("auth", "allowed"), limited: counter("auth", "limited") },
      api: { allowed: counter("api", "allowed"), limited: counter("api", "limited") },
      account: { allowed: counter("account", "allowed"), limited: counter("account", "limited") },
    };
    if (redis) {
      this.redis = redis;
      // A reconnect ends the back-off at once: the shared limit matters more than the pause.
      redis.on("ready", () => {
        this.retryRedisAt = 0;
        // A Redis that restarted or failed over no longer holds what the leases were taken from.
        this.leases.clear();
        // Shared limits resume with the next decision; a quiet process must not report otherwise.
        this.setFallback(false);
      });
    }
    metrics.rateLimitFallback.set(0);
  }

  limitOf(routeClass: LimitClass): number {
    return this.limits[routeClass];
  }

  /** Synchronous when decided in process; a promise while Redis is asked. */
  decide(routeClass: LimitClass, tenant: string, principal: string): Decision | Promise<Decision> {
    return this.decideKey(routeClass, RedisKeys.rateLimit(routeClass, tenant, principal));
  }

  /** `decide` for a key the caller built (and may keep: a principal's key is the same on every request). */
  decideKey(routeClass: LimitClass, key: string): Decision | Promise<Decision> {
    const limit = this.limits[routeClass];
    const redis = this.redis;
    const answering = redis?.status === "ready" && performance.now() >= this.retryRedisAt;
    if (redis && !answering) this.setFallback(true, redis.status !== "ready" ? `redis ${redis.status}` : undefined);
    // Tokens Redis granted are this process's to spend, whether Redis answers now or not.
    const lease = this.leases.get(key);
    if (lease !== undefined) {
      const now = this.clock.now();
      if (now < lease.expiresAt) {
        lease.left--;
        if (lease.left === 0) this.leases.delete(key);
        // Half used: the next lease is asked for now, so the requests after this one need not
        // wait for Redis when this one runs out.
        const size = this.leaseSizes[routeClass];
        if (
          answering &&
          !lease.renewing &&
          size >= MIN_RENEWED_LEASE &&
          lease.left <= size / 2 &&
          !this.asked.has(key)
        ) {
          lease.renewing = true;
          this.ask(key, routeClass, []);
        }
        const remaining = lease.remaining + lease.left;
        const resetMs = Math.max(0, Math.ceil(lease.fullAt - now - lease.left * (PERIOD_MS / limit)));
        return this.count(routeClass, { allowed: true, limit, remaining, retryAfterMs: 0, resetMs });
      }
      this.leases.delete(key);
    }
    if (!answering) return this.count(routeClass, this.local.decide(key, limit, PERIOD_MS, this.clock.now()));
    return new Promise<Decision>((resolve) => {
      const asked = this.asked.get(key);
      if (asked !== undefined) {
        (asked.sent ? asked.waiting : asked.resolves).push(resolve);
        return;
      }
      this.ask(key, routeClass, [resolve]);
    });
  }

  /** Queues a call to Redis for `key` this turn, deciding `resolves` (none: a lease asked for ahead). */
  private ask(key: string, routeClass: LimitClass, resolves: Resolve[]): void {
    this.asked.set(key, { routeClass, resolves, sent: false, waiting: [] });
    const slot = slotOf(key);
    let batch = this.batches.get(slot);
    if (batch === undefined || batch.length >= MAX_BATCH) {
      // Every decision asked this turn goes out together once the turn's requests are in.
      if (this.batches.size === 0) setImmediate(this.flush);
      if (batch !== undefined) this.full.push(batch);
      batch = [];
      this.batches.set(slot, batch);
    }
    batch.push(key);
  }

  /** One script call per tenant for the decisions asked this turn; the local limiter for each if Redis fails. */
  private readonly flush = (): void => {
    const batches = [...this.full, ...this.batches.values()];
    this.full = [];
    this.batches.clear();
    this.dropExpiredLeases();
    const redis = this.redis as Redis;
    const now = this.clock.now();
    for (const keys of batches) {
      const calls = keys.map((key) => this.asked.get(key) as Asked);
      const args = [String(PERIOD_MS)];
      for (const [i, call] of calls.entries()) {
        call.sent = true;
        const { routeClass, resolves } = call;
        // A call asked ahead for the next lease (deciding no request) takes one whatever the gap.
        const recent = this.calledRecently(keys[i] as string, now);
        const lease = recent || resolves.length === 0 ? this.leaseSizes[routeClass] : 0;
        args.push(String(PERIOD_MS / this.limits[routeClass]), String(resolves.length + lease));
      }
      withinDeadline(GCRA.run(redis, keys, args) as Promise<number[]>, this.config.redisTimeoutMs).then(
        (reply) => {
          this.setFallback(false);
          const now = this.clock.now();
          keys.forEach((key, i) => {
            const [granted = 0, remaining = 0, retryAfterMs = 0, resetMs = 0] = reply.slice(
              i * REPLY_FIELDS,
              (i + 1) * REPLY_FIELDS,
            );
            this.grant(key, calls[i] as Asked, { granted, remaining, retryAfterMs, resetMs }, now);
          });
          for (const [i, key] of keys.entries()) this.settleWaiting(key, calls[i] as Asked);
        },
        (error: Error) => {
          this.retryRedisAt = performance.now() + REDIS_RETRY_AFTER_MS;
          this.setFallback(true, error.message);
          const now = this.clock.now();
          for (const [i, key] of keys.entries()) {
            const { routeClass, resolves } = calls[i] as Asked;
            const limit = this.limits[routeClass];
            for (const resolve of resolves) {
              resolve(this.count(routeClass, this.local.decide(key, limit, PERIOD_MS, now)));
            }
            this.settleWaiting(key, calls[i] as Asked);
          }
        },
      );
    }
  };

  /** The call is done: what waited for it is decided now, from its lease or with the next call. */
  private settleWaiting(key: string, call: Asked): void {
    this.asked.delete(key);
    for (const resolve of call.waiting) resolve(this.decideKey(call.routeClass, key));
  }

  /** Hands a key's granted tokens to its requests, in the order asked, and keeps the rest as a lease. */
  private grant(
    key: string,
    { routeClass, resolves }: Pick<Asked, "routeClass" | "resolves">,
    reply: { granted: number; remaining: number; retryAfterMs: number; resetMs: number },
    now: number,
  ): void {
    const limit = this.limits[routeClass];
    const interval = PERIOD_MS / limit;
    const { granted, remaining, retryAfterMs, resetMs } = reply;
    resolves.forEach((resolve, i) => {
      const allowed = i < granted;
      // Each request sees the tokens granted after it as still in the bucket, as one decision at a time would.
      const after = allowed ? granted - i - 1 : 0;
      resolve(
        this.count(routeClass, {
          allowed,
          limit,
          remaining: remaining + after,
          retryAfterMs: allowed ? 0 : retryAfterMs,
          resetMs: Math.ceil(resetMs - after * interval),
        }),
      );
    });
    const left = granted - resolves.length;
    if (left <= 0) return;
    // Tokens taken are never dropped for newer ones: what an unexpired lease still holds adds up.
    const held = this.leases.get(key);
    const kept = held !== undefined && held.expiresAt > now ? held.left : 0;
    this.leases.delete(key);
    this.leases.set(key, {
      left: left + kept,
      remaining,
      fullAt: now + resetMs,
      expiresAt: now + LEASE_MS,
      renewing: false,
    });
  }

  private dropExpiredLeases(): void {
    const now = this.clock.now();
    for (const [key, lease] of this.leases) {
      if (lease.expiresAt > now) break;
      this.leases.delete(key);
    }
    for (const [key, at] of this.lastCalled) {
      if (now - at < LEASE_MS) break;
      this.lastCalled.delete(key);
    }
  }

  /** Whether `key` called Redis from here under LEASE_MS ago; notes this call either way. */
  private calledRecently(key: string, now: number): boolean {
    const at = this.lastCalled.get(key);
    this.lastCalled.delete(key);
    this.lastCalled.set(key, now);
    return at !== undefined && now - at < LEASE_MS;
  }

  get fallbackActive(): boolean {
    return this.fallback;
  }

  /**
   * Redis answered a PING (the readiness check, at least once a scrape): the next decision goes
   * to it again, and a quiet process stops reporting the fallback. Redis that hung and resumed
   * keeps its connection, so the reconnect that clears the fallback otherwise never comes.
   */
  redisAnswered(latencyMs: number): void {
    // Slower than a decision may wait, Redis would only fail the next one again.
    if (!this.fallback || latencyMs > this.config.redisTimeoutMs) return;
    this.retryRedisAt = 0;
    this.setFallback(false);
  }

  private count(routeClass: LimitClass, decision: Decision): Decision {
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
