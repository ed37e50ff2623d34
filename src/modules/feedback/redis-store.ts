import type { Redis } from "ioredis";
import type { Clock } from "../../lib/clock";
import { RedisKeys } from "../../lib/redis-keys";
import { RedisScript } from "../../lib/redis-script";
import type { FeedbackItem, Verdict } from "./model";
import type { FeedbackStore, SubjectCounts } from "./store";

/**
 * The entries a tick collected for one tenant, in one atomic script (one round trip): each entry
 * with its TTL and its member in its subject's index, then every subject in the tenant's index.
 * Each index drops members that have expired and keeps a TTL no shorter than its longest-lived
 * member, so when the last entry expires its indexes go with it: nothing is left behind.
 * Replaying the same entry rewrites the same keys and members, so a replay never duplicates.
 *
 * KEYS: the tenant's subjects index, then per entry: the entry, its subject's index.
 * ARGV: now (ms), the entry whose subject index drops its expired members (1-based, 0 for none),
 * the subject index keys' prefix, then per entry: JSON, expiry (ms, the score), index member.
 * A subject's id is its index key past the prefix, and an entry's TTL its expiry less now: each
 * argument costs the client an encoding, and the client is the busier side. Pruning expired
 * members runs for one entry in PRUNE_EVERY (and on reads): reads filter by score anyway, and it
 * is most of an entry's cost.
 */
const PUT_SCRIPT = `
local now = tonumber(ARGV[1])
local prune = tonumber(ARGV[2])
local prefixLength = #ARGV[3]
local n = (#KEYS - 1) / 2
local longest = 0
local scored = {}
local kept = 0
for i = 1, n do
  local subject = KEYS[2 * i + 1]
  local a = 3 * i + 1
  local expiry = ARGV[a + 1]
  local ttl = tonumber(expiry) - now
  -- One accepted a moment before the batch's now may have expired since: nothing to keep.
  if ttl > 0 then
    redis.call('SET', KEYS[2 * i], ARGV[a], 'PX', ttl)
    if i == prune then redis.call('ZREMRANGEBYSCORE', subject, '-inf', now) end
    redis.call('ZADD', subject, expiry, ARGV[a + 2])
    if redis.call('PTTL', subject) < ttl then redis.call('PEXPIRE', subject, ttl) end
    if ttl > longest then longest = ttl end
    kept = kept + 1
    scored[2 * kept - 1] = expiry
    scored[2 * kept] = string.sub(subject, prefixLength + 1)
  end
end
local subjects = KEYS[1]
if prune > 0 then redis.call('ZREMRANGEBYSCORE', subjects, '-inf', now) end
if kept > 0 then
  redis.call('ZADD', subjects, 'GT', unpack(scored))
  if redis.call('PTTL', subjects) < longest then redis.call('PEXPIRE', subjects, longest) end
end
return n
`;
const PUT = new RedisScript(PUT_SCRIPT);

/** One entry in this many also drops expired members from the indexes it touches. */
const PRUNE_EVERY = 64;
/** Entries per script call at most, so one call never holds Redis for long (a replay sends 500 at once). */
const MAX_BATCH = 128;

/** A tenant's entries waiting for the end of the tick; every caller awaits the same `done`. */
class PutBatch {
  readonly keys: string[];
  /** now, the entry to prune at, the subject keys' prefix; then three per entry. */
  readonly argv: string[];
  size = 0;
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (error: Error) => void;

  constructor(subjectsKey: string, subjectPrefix: string) {
    this.keys = [subjectsKey];
    this.argv = ["0", "0", subjectPrefix];
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/**
 * Feedback in Redis. Writes are batched per tenant until the end of the tick (as ioredis's
 * auto-pipelining would, but one script call for the batch instead of one per entry, each with
 * its own command, promises and reply), then sent at once. A failed call fails every entry of
 * its batch, and the service spools each of them.
 */
export class RedisFeedbackStore implements FeedbackStore {
  private writes = 0;
  private readonly batches = new Map<string, PutBatch>();
  private flushScheduled = false;
  private readonly flush = () => this.sendAll();

  constructor(
    private readonly redis: Redis,
    private readonly clock: Clock,
  ) {}

  put(tenantId: string, item: FeedbackItem, expiresAt: number): Promise<void> {
    const now = this.clock.now();
    const ttlMs = expiresAt - now;
    if (ttlMs <= 0) return Promise.resolve();
    let batch = this.batches.get(tenantId);
    if (batch === undefined) {
      batch = new PutBatch(RedisKeys.feedbackSubjects(tenantId), RedisKeys.feedbackSubject(tenantId, ""));
      this.batches.set(tenantId, batch);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    }
    batch.keys.push(RedisKeys.feedbackItem(tenantId, item.id), RedisKeys.feedbackSubject(tenantId, item.subject_id));
    batch.argv[0] = String(now);
    batch.argv.push(JSON.stringify(item), String(expiresAt), `${item.id}:${item.verdict}`);
    ++batch.size;
    if (++this.writes % PRUNE_EVERY === 0) batch.argv[1] = String(batch.size);
    if (batch.size >= MAX_BATCH) {
      this.batches.delete(tenantId);
      this.send(batch);
    }
    return batch.done;
  }

  private sendAll(): void {
    this.flushScheduled = false;
    for (const batch of this.batches.values()) this.send(batch);
    this.batches.clear();
  }

  private send(batch: PutBatch): void {
    PUT.run(this.redis, batch.keys, batch.argv).then(
      () => batch.resolve(),
      (error: Error) => batch.reject(error),
    );
  }

  async list(tenantId: string, subjectId: string, before: string | undefined, limit: number): Promise<FeedbackItem[]> {
    const members = await this.liveMembers(RedisKeys.feedbackSubject(tenantId, subjectId));
    const ids = members
      .map((member) => member.slice(0, member.indexOf(":")))
      .filter((id) => before === undefined || id < before)
      .sort()
      .reverse()
      .slice(0, limit);
    if (ids.length === 0) return [];
    const bodies = await this.redis.mget(ids.map((id) => RedisKeys.feedbackItem(tenantId, id)));
    // An entry can expire between the two reads; its index member goes on the next write.
    return bodies.filter((body): body is string => body !== null).map((body) => JSON.parse(body) as FeedbackItem);
  }

  async counts(tenantId: string): Promise<SubjectCounts[]> {
    // Reads are rare next to writes: they keep the tenant's index small.
    void this.redis.zremrangebyscore(RedisKeys.feedbackSubjects(tenantId), "-inf", this.clock.now()).catch(() => {});
    const subjects = await this.liveMembers(RedisKeys.feedbackSubjects(tenantId));
    // Auto-pipelining sends these together: one round trip for every subject.
    const perSubject = await Promise.all(
      subjects.map((subjectId) => this.liveMembers(RedisKeys.feedbackSubject(tenantId, subjectId))),
    );
    return subjects.map((subjectId, i) => {
      const byVerdict: Partial<Record<Verdict, number>> = {};
      for (const member of perSubject[i] ?? []) {
        const verdict = member.slice(member.indexOf(":") + 1) as Verdict;
        byVerdict[verdict] = (byVerdict[verdict] ?? 0) + 1;
      }
      return { subjectId, byVerdict };
    });
  }

  /** Members whose score (expiry) is still ahead. */
  private liveMembers(key: string): Promise<string[]> {
    return this.redis.zrangebyscore(key, `(${this.clock.now()}`, "+inf");
  }
}
