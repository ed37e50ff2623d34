import type { Redis } from "ioredis";
import type { Db } from "../../../db/client";
import { healthProbe } from "../../../db/schema";
import type { Clock } from "../../lib/clock";
import type { Check, Readiness } from "./model";

const REDIS_PING_TIMEOUT_MS = 250;

export interface HealthDeps {
  db: Db;
  redis: Redis | undefined;
  clock: Clock;
}

/** Ready means SQLite accepts a write; Redis being down only degrades (the service falls back). */
export async function checkReadiness(deps: HealthDeps): Promise<Readiness> {
  const sqlite = checkSqliteWritable(deps);
  const redis = await checkRedis(deps.redis);
  const status = sqlite.status !== "up" ? "not_ready" : redis.status === "down" ? "degraded" : "ready";
  return { status, checks: { sqlite, redis } };
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
