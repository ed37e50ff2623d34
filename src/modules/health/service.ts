import type { Redis } from "ioredis";
import type { Db } from "../../../db/client";
import { healthProbe } from "../../../db/schema";
import type { Clock } from "../../lib/clock";
import type { Check, Readiness } from "./model";

const REDIS_PING_TIMEOUT_MS = 250;
/**
 * How long one check answers for. `/ready` and `/metrics` need no credentials, and each check
 * writes to SQLite and pings Redis: reused for a second, a flood of probes costs one write a
 * second, while a load balancer polling every few seconds still sees every change.
 */
export const READINESS_REUSE_MS = 1000;

export interface HealthDeps {
  db: Db;
  redis: Redis | undefined;
  clock: Clock;
  /** Feedback accepted but not yet in Redis (spooled to SQLite): reads of it are incomplete meanwhile. */
  spooledFeedback?: () => number;
}

/**
 * Ready means SQLite accepts a write; Redis being down only degrades (the service falls back).
 * Once shutdown begins the answer is `not_ready` at once, so a load balancer polling over a
 * kept-alive connection stops sending work while in-flight requests drain.
 */
export class ReadinessProbe {
  private last: { at: number; readiness: Promise<Readiness> } | undefined;
  private stopping = false;
  /**
   * Told whether Redis answered each check's PING. A Redis that hung and came back never drops
   * the connection, so no reconnect event says it is back (or, while it hangs, that it is gone).
   */
  onRedisChecked: (answered: boolean, latencyMs: number) => void = () => undefined;

  constructor(private readonly deps: HealthDeps) {}

  /** The latest check if it is under READINESS_REUSE_MS old (or still running), else a new one. */
  check(): Promise<Readiness> {
    const now = this.deps.clock.now();
    if (this.last && now - this.last.at < READINESS_REUSE_MS && now >= this.last.at) return this.last.readiness;
    const readiness = this.run();
    this.last = { at: now, readiness };
    return readiness;
  }

  /** From now on every check answers `not_ready` (shutting down). */
  shuttingDown(): void {
    this.stopping = true;
    this.last = undefined;
  }

  private async run(): Promise<Readiness> {
    const sqlite = checkSqliteWritable(this.deps);
    const redis = await checkRedis(this.deps.redis);
    if (redis.status !== "disabled")
      this.onRedisChecked(redis.status === "up", redis.latency_ms ?? Number.POSITIVE_INFINITY);
    // A Redis that answers PING but refuses writes (out of memory, read-only) shows only here;
    // one that is down says why first, and how much waits for it.
    const spooled = redis.status === "disabled" ? 0 : (this.deps.spooledFeedback?.() ?? 0);
    const waiting = `feedback spooled, not yet stored in redis: ${spooled} ${spooled === 1 ? "entry" : "entries"}`;
    const checks = {
      sqlite,
      redis: spooled > 0 ? { ...redis, detail: redis.detail ? `${redis.detail}; ${waiting}` : waiting } : redis,
    };
    if (this.stopping) {
      return { status: "not_ready", detail: "shutting down: take this instance out of rotation", checks };
    }
    const status = sqlite.status !== "up" ? "not_ready" : redis.status === "down" || spooled > 0 ? "degraded" : "ready";
    return { status, checks };
  }
}

function checkSqliteWritable({ db, clock }: HealthDeps): Check {
  const started = performance.now();
  try {
    const now = clock.now();
    db.insert(healthProbe)
      .values({ id: 1, checkedAt: now })
      .onConflictDoUpdate({ target: healthProbe.id, set: { checkedAt: now } })
      .run();
    return { status: "up", latency_ms: elapsedMs(started) };
  } catch (error) {
    return { status: "down", detail: `sqlite not writable: ${(error as Error).message}` };
  }
}

async function checkRedis(redis: Redis | undefined): Promise<Check> {
  if (!redis) return { status: "disabled" };
  if (redis.status !== "ready") return { status: "down", detail: `redis ${redis.status}` };
  const started = performance.now();
  let timer: Timer | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("ping timed out")), REDIS_PING_TIMEOUT_MS);
      }),
    ]);
    return { status: "up", latency_ms: elapsedMs(started) };
  } catch (error) {
    return { status: "down", detail: `redis: ${(error as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}

function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}
