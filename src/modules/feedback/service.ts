import { type Redis, ReplyError } from "ioredis";
import type { Db } from "../../../db/client";
import type { Clock } from "../../lib/clock";
import { DeadlineExceeded, withinDeadline } from "../../lib/deadline";
import type { Logger } from "../../lib/logger";
import { pageOf } from "../../lib/paging";
import { HttpProblem, invalidField } from "../../lib/problem";
import { ulid } from "../../lib/secrets";
import { WriteBatcher } from "../../lib/write-batcher";
import type { Metrics } from "../../plugins/metrics";
import {
  checkLabels,
  type FeedbackItem,
  type FeedbackRequest,
  SUBJECT_TYPES,
  type SubjectSummary,
  type Summary,
  type Verdict,
} from "./model";
import { RedisFeedbackStore } from "./redis-store";
import { FeedbackSpool } from "./spool";
import { SqliteFeedbackStore } from "./sqlite-store";
import type { FeedbackStore, SubjectPosition, SubjectQuery } from "./store";

/** A write waits this long for Redis before it is spooled to SQLite instead. */
const REDIS_WRITE_TIMEOUT_MS = 250;
/** A read waits this long for Redis before it is a 503: a Redis that hangs must not hold the caller. */
const REDIS_READ_TIMEOUT_MS = 2000;

export interface FeedbackDeps {
  db: Db;
  redis: Redis | undefined;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  ttlSeconds: number;
  /** Live entries one subject may hold (FEEDBACK_MAX_PER_SUBJECT). */
  maxPerSubject: number;
}

/**
 * Operators' verdicts on alerts, incidents and recommendations (DESIGN §8). With Redis: stored
 * there with a TTL, spooled to SQLite while Redis is down and replayed when it returns. Without
 * Redis: SQLite with expiry sweeps. Same answers either way.
 */
export class FeedbackService {
  readonly store: FeedbackStore;
  readonly spool: FeedbackSpool | undefined;
  private readonly sqlite: SqliteFeedbackStore | undefined;
  private readonly redis: Redis | undefined;
  private readonly counters = new Map<string, { inc(): void }>();
  /** Many entries are accepted within one millisecond: their two ISO dates are formatted once. */
  private dates = { at: Number.NaN, created: "", expires: "" };
  /** The Redis write the last entry joined, and the same write bounded by the deadline. */
  private bounded: { write: Promise<ReadonlySet<string>>; within: Promise<ReadonlySet<string>> } | undefined;

  constructor(private readonly deps: FeedbackDeps) {
    const batcher = new WriteBatcher(deps.db.$client);
    this.redis = deps.redis;
    if (deps.redis) {
      this.store = new RedisFeedbackStore(deps.redis, deps.clock);
      this.spool = new FeedbackSpool(deps.db, deps.clock, batcher, (depth) =>
        deps.metrics.feedbackSpoolDepth.set(depth),
      );
    } else {
      this.sqlite = new SqliteFeedbackStore(deps.db, deps.clock, batcher);
      this.sqlite.reconcile();
      this.store = this.sqlite;
      deps.metrics.feedbackSpoolDepth.set(0);
    }
  }

  async accept(
    principal: { tid: string; sub: string },
    request: FeedbackRequest,
  ): Promise<{ id: string; expires_at: string }> {
    const labels = checkLabels(request.labels);
    const now = this.deps.clock.now();
    const expiresAt = now + this.deps.ttlSeconds * 1000;
    const dates = this.datesAt(now);
    // Absent optional fields stay undefined, which JSON leaves out: the same JSON as before, without spread copies.
    const item: FeedbackItem = {
      id: ulid(now),
      subject_type: request.subject_type,
      subject_id: request.subject_id,
      verdict: request.verdict,
      rating: request.rating,
      comment: request.comment,
      labels,
      author: principal.sub,
      created_at: dates.created,
      expires_at: dates.expires,
    };
    const refused = await this.write(principal.tid, item, expiresAt);
    if (refused?.has(item.id)) throw subjectFull(this.deps.maxPerSubject, this.deps.ttlSeconds);
    this.counted(request.verdict, request.subject_type).inc();
    return { id: item.id, expires_at: item.expires_at };
  }

  /** One subject's feedback, or, without a type, that of every subject with this id. */
  async list(tenantId: string, subject: SubjectQuery, cursor: string | undefined, limit: number) {
    this.assertReadable();
    const { page, next_cursor } = pageOf(await this.read(this.store.list(tenantId, subject, cursor, limit + 1)), limit);
    return { items: page, next_cursor };
  }

  /** The tenant's totals, and one page of its subjects (most recent feedback first). */
  async summary(tenantId: string, cursor: string | undefined, limit: number): Promise<Summary> {
    this.assertReadable();
    const after = cursor === undefined ? undefined : decodeSubjectCursor(cursor);
    // One more than asked tells whether another page exists.
    const [totals, subjects] = await Promise.all([
      this.read(this.store.totals(tenantId)),
      this.read(this.store.subjects(tenantId, after, limit + 1)),
    ]);
    const page = subjects.slice(0, limit);
    const last = page.at(-1);
    const { total, by_verdict, false_positive_rate } = summarise(totals);
    return {
      total,
      by_verdict,
      false_positive_rate,
      subjects: page.map((subject) => ({
        subject_type: subject.subjectType,
        subject_id: subject.subjectId,
        ...summarise(subject.byVerdict),
      })),
      next_cursor: subjects.length > limit && last ? encodeSubjectCursor(last) : null,
    };
  }

  /** Moves spooled feedback into Redis once it answers; returns how many entries went. */
  async replaySpool(): Promise<number> {
    if (!this.spool) return 0;
    this.spool.refresh();
    if (this.spool.depth === 0 || this.redis?.status !== "ready") return 0;
    return this.spool.replay(this.store);
  }

  /** Without Redis: deletes expired entries. */
  sweepExpired(): number {
    return this.sqlite?.sweepExpired() ?? 0;
  }

  /**
   * Stored, or refused for a full subject (the ids in the answer). Spooled while Redis is away,
   * where no subject's count can be read: the limit then waits for Redis to be back.
   */
  private async write(
    tenantId: string,
    item: FeedbackItem,
    expiresAt: number,
  ): Promise<ReadonlySet<string> | undefined> {
    const { spool, redis } = this;
    if (!spool || !redis) return this.store.put(tenantId, item, expiresAt, this.deps.maxPerSubject);
    // Behind a non-empty spool, new entries queue too, so replay keeps the order of acceptance.
    if (redis.status === "ready" && spool.depth === 0) {
      try {
        return await this.redisWrite(tenantId, item, expiresAt);
      } catch (error) {
        // A write that timed out may still land; the replay rewrites the same keys, not a copy.
        this.deps.log.warn({ err: { message: (error as Error).message } }, "feedback spooled: redis write failed");
      }
    }
    await spool.add(tenantId, item, expiresAt);
    return undefined;
  }

  /**
   * The store sends the entries of one tick in one call and hands each the same promise: they
   * share one deadline too, counted from the first of them.
   */
  private redisWrite(tenantId: string, item: FeedbackItem, expiresAt: number): Promise<ReadonlySet<string>> {
    const write = this.store.put(tenantId, item, expiresAt, this.deps.maxPerSubject);
    if (this.bounded?.write !== write) {
      this.bounded = { write, within: withinDeadline(write, REDIS_WRITE_TIMEOUT_MS) };
    }
    return this.bounded.within;
  }

  private datesAt(now: number): { created: string; expires: string } {
    if (this.dates.at !== now) {
      this.dates = {
        at: now,
        created: new Date(now).toISOString(),
        expires: new Date(now + this.deps.ttlSeconds * 1000).toISOString(),
      };
    }
    return this.dates;
  }

  private assertReadable(): void {
    if (this.redis && this.redis.status !== "ready") throw unavailable();
  }

  /** A Redis read, or the same 503 as a disconnected Redis gets once it has not answered in time. */
  private async read<T>(reading: Promise<T>): Promise<T> {
    if (!this.redis) return reading;
    try {
      return await withinDeadline(reading, REDIS_READ_TIMEOUT_MS);
    } catch (error) {
      // Redis that hangs, has gone (a command sent as it dropped), or refuses (LOADING, OOM…): 503.
      // Anything else is ours, and stays a 500.
      if (error instanceof DeadlineExceeded || error instanceof ReplyError || this.redis.status !== "ready") {
        this.deps.log.warn({ err: { message: (error as Error).message } }, "feedback read: redis did not answer");
        throw unavailable();
      }
      throw error;
    }
  }

  private counted(verdict: string, subjectType: string): { inc(): void } {
    const key = `${verdict} ${subjectType}`;
    let counter = this.counters.get(key);
    if (!counter) {
      counter = this.deps.metrics.feedbackTallies.of({ verdict, subject_type: subjectType });
      this.counters.set(key, counter);
    }
    return counter;
  }
}

function subjectFull(limit: number, ttlSeconds: number): HttpProblem {
  return new HttpProblem(
    409,
    "subject-full",
    `This subject already holds ${limit} live feedback entries, the most one may (FEEDBACK_MAX_PER_SUBJECT); each expires ${ttlSeconds} s after it was given.`,
  );
}

function unavailable(): HttpProblem {
  return new HttpProblem(
    503,
    "feedback-unavailable",
    "Feedback cannot be read while Redis is unreachable; new feedback is still accepted.",
    { headers: { "retry-after": "5" } },
  );
}

function encodeSubjectCursor(position: SubjectPosition): string {
  return Buffer.from(JSON.stringify([position.lastExpiry, position.subjectType, position.subjectId])).toString(
    "base64url",
  );
}

function decodeSubjectCursor(cursor: string): SubjectPosition {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    decoded = undefined;
  }
  if (
    !Array.isArray(decoded) ||
    decoded.length !== 3 ||
    !Number.isSafeInteger(decoded[0]) ||
    !(SUBJECT_TYPES as readonly unknown[]).includes(decoded[1]) ||
    typeof decoded[2] !== "string"
  ) {
    throw invalidField("cursor", "not a cursor this API returned (pass next_cursor as it came)", "query");
  }
  return { lastExpiry: decoded[0], subjectType: decoded[1], subjectId: decoded[2] };
}

/** Counts by verdict, their total and the false-positive rate: of one subject, or of the tenant. */
function summarise(byVerdict: Partial<Record<Verdict, number>>): Omit<SubjectSummary, "subject_type" | "subject_id"> {
  const total = Object.values(byVerdict).reduce((sum, n) => sum + (n ?? 0), 0);
  const falsePositives = byVerdict.false_positive ?? 0;
  return {
    total,
    by_verdict: byVerdict as Record<string, number>,
    false_positive_rate: total === 0 ? 0 : Math.round((falsePositives / total) * 10_000) / 10_000,
  };
}
