/**
 * GCRA (generic cell rate algorithm): a token bucket stored as one number, the "theoretical
 * arrival time" (TAT). `limit` requests per `periodMs`, all of which may come at once (burst =
 * limit); then one more every periodMs / limit. The Redis script (src/plugins/rate-limit-redis.ts)
 * is the same arithmetic.
 */

export interface Decision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** When denied: how long until one request would be allowed. */
  readonly retryAfterMs: number;
  /** How long until the whole quota is available again. */
  readonly resetMs: number;
}

export interface Step {
  readonly decision: Decision;
  /** The TAT to store (unchanged when denied). */
  readonly tat: number;
}

// Division by a fractional interval can land a hair under a whole number.
const EPSILON = 1e-9;

export function gcraStep(tat: number | undefined, now: number, limit: number, periodMs: number): Step {
  const interval = periodMs / limit;
  const start = tat === undefined || tat < now ? now : tat;
  const next = start + interval;
  const ahead = next - now;
  if (ahead <= periodMs) {
    const remaining = Math.floor((periodMs - ahead) / interval + EPSILON);
    return { tat: next, decision: { allowed: true, limit, remaining, retryAfterMs: 0, resetMs: Math.ceil(ahead) } };
  }
  return {
    tat: start,
    decision: {
      allowed: false,
      limit,
      remaining: 0,
      retryAfterMs: Math.ceil(ahead - periodMs),
      resetMs: Math.ceil(start - now),
    },
  };
}

/** The in-process limiter: what runs without Redis, and while Redis fails. Memory only. */
export class LocalGcra {
  private readonly tats = new Map<string, number>();

  constructor(private readonly maxKeys = 100_000) {}

  decide(key: string, limit: number, periodMs: number, now: number): Decision {
    const tat = this.tats.get(key);
    // gcraStep's allowed branch, inlined: this runs on every request of a limited route.
    const interval = periodMs / limit;
    const next = (tat === undefined || tat < now ? now : tat) + interval;
    const ahead = next - now;
    if (ahead > periodMs) return gcraStep(tat, now, limit, periodMs).decision;
    if (tat === undefined && this.tats.size >= this.maxKeys) this.evict(now);
    this.tats.set(key, next);
    const remaining = Math.floor((periodMs - ahead) / interval + EPSILON);
    return { allowed: true, limit, remaining, retryAfterMs: 0, resetMs: Math.ceil(ahead) };
  }

  get size(): number {
    return this.tats.size;
  }

  /** A key whose TAT has passed is a full bucket: forgetting it changes nothing. */
  private evict(now: number): void {
    for (const [key, tat] of this.tats) if (tat <= now) this.tats.delete(key);
    // Still full of live keys: drop the oldest insertions rather than grow without bound.
    const excess = this.tats.size - Math.floor(this.maxKeys * 0.9);
    if (excess > 0) {
      let dropped = 0;
      for (const key of this.tats.keys()) {
        if (dropped++ >= excess) break;
        this.tats.delete(key);
      }
    }
  }
}
