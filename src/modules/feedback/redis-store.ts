import type { Redis } from "ioredis";
import type { Clock } from "../../lib/clock";
import { RedisKeys } from "../../lib/redis-keys";
import { RedisScript } from "../../lib/redis-script";
import { type FeedbackItem, SUBJECT_TYPES, type SubjectType, VERDICTS, type Verdict } from "./model";
import type { FeedbackStore, Subject, SubjectCounts, SubjectPosition, SubjectQuery } from "./store";

/**
 * The entries a tick collected for one tenant, in one atomic script (one round trip): each entry
 * with its TTL, its member in its subject's index and its id in its verdict's index, then every
 * subject in the tenant's index. Each index drops members that have expired and keeps a TTL no
 * shorter than its longest-lived member, so when the last entry expires its indexes go with it:
 * nothing is left behind. Replaying the same entry rewrites the same keys and members, so a replay
 * never duplicates.
 *
 * KEYS: the tenant's subjects index, its verdict indexes (in VERDICTS order), then per entry: the
 * entry, its subject's index.
 * ARGV: now (ms), the entry whose indexes drop their expired members (1-based, 0 for none), the
 * subject index keys' prefix, the most live entries a subject may hold (0: no limit), then per
 * entry: JSON, expiry (ms, the score), index member
 * (`id:verdict`). A subject (`type:id`) is its index key past the prefix, and an entry's TTL its expiry
 * less now: each argument costs the client an encoding, and the client is the busier side.
 * Pruning expired members runs for one entry in PRUNE_EVERY (and on reads): reads filter by score
 * anyway, and it is most of an entry's cost; and when a subject looks full, as its count then
 * includes expired members. Returns the (1-based) entries refused because their subject is full.
 */
const PUT_SCRIPT = `
local now = tonumber(ARGV[1])
local prune = tonumber(ARGV[2])
local prefixLength = #ARGV[3]
local limit = tonumber(ARGV[4])
local refused = {}
local verdicts = {}
local verdictTtl = {}
for i, name in ipairs({${VERDICTS.map((v) => `'${v}'`).join(", ")}}) do
  verdicts[name] = KEYS[1 + i]
  verdictTtl[name] = 0
end
local first = 2 + ${VERDICTS.length}
local n = (#KEYS - first + 1) / 2
local longest = 0
local scored = {}
local kept = 0
-- Score and id pairs, one ZADD a verdict for the whole call.
local byVerdict = {}
for name in pairs(verdicts) do byVerdict[name] = {} end
for i = 1, n do
  local subject = KEYS[first + 2 * i - 1]
  local a = 3 * i + 2
  local expiry = ARGV[a + 1]
  local member = ARGV[a + 2]
  local ttl = tonumber(expiry) - now
  -- Unknown (nil) without a limit to check: only a count of 0 says the subject's index is new.
  local held = nil
  if ttl > 0 and limit > 0 then
    held = redis.call('ZCARD', subject)
    if held >= limit then
      redis.call('ZREMRANGEBYSCORE', subject, '-inf', now)
      held = redis.call('ZCARD', subject)
    end
    if held >= limit and not redis.call('ZSCORE', subject, member) then
      refused[#refused + 1] = i
      ttl = 0
    end
  end
  -- One accepted a moment before the batch's now may have expired since: nothing to keep.
  if ttl > 0 then
    redis.call('SET', KEYS[first + 2 * i - 2], ARGV[a], 'PX', ttl)
    if i == prune then redis.call('ZREMRANGEBYSCORE', subject, '-inf', now) end
    redis.call('ZADD', subject, expiry, member)
    -- An index this entry created has no TTL yet: no need to ask for it.
    if held == 0 or redis.call('PTTL', subject) < ttl then redis.call('PEXPIRE', subject, ttl) end
    local colon = string.find(member, ':', 1, true)
    local verdict = string.sub(member, colon + 1)
    local ids = byVerdict[verdict]
    ids[#ids + 1] = expiry
    ids[#ids + 1] = string.sub(member, 1, colon - 1)
    if ttl > verdictTtl[verdict] then verdictTtl[verdict] = ttl end
    if ttl > longest then longest = ttl end
    kept = kept + 1
    scored[2 * kept - 1] = expiry
    scored[2 * kept] = string.sub(subject, prefixLength + 1)
  end
end
for name, key in pairs(verdicts) do
  if prune > 0 then redis.call('ZREMRANGEBYSCORE', key, '-inf', now) end
  if #byVerdict[name] > 0 then redis.call('ZADD', key, unpack(byVerdict[name])) end
  local ttl = verdictTtl[name]
  if ttl > 0 and redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
local subjects = KEYS[1]
if prune > 0 then redis.call('ZREMRANGEBYSCORE', subjects, '-inf', now) end
if kept > 0 then
  redis.call('ZADD', subjects, 'GT', unpack(scored))
  if redis.call('PTTL', subjects) < longest then redis.call('PEXPIRE', subjects, longest) end
end
return refused
`;
const PUT = new RedisScript(PUT_SCRIPT);

/**
 * Redis orders members of equal score by their bytes (UTF-8), not as JavaScript compares strings
 * (UTF-16 code units): the two disagree past U+E000 (`\uFF21` sorts after `\u{1F600}` in Redis).
 */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** A subject as the tenant's index holds it: `type:id` (a type holds no colon). */
function memberOf(subject: Subject): string {
  return `${subject.subjectType}:${subject.subjectId}`;
}

/** One entry in this many also drops expired members from the indexes it touches. */
const PRUNE_EVERY = 64;
/** Entries per script call at most, so one call never holds Redis for long (a replay sends 500 at once). */
const MAX_BATCH = 128;

const NONE_REFUSED: ReadonlySet<string> = new Set();

/** A tenant's entries waiting for the end of the tick; every caller awaits the same `done`. */
class PutBatch {
  readonly keys: string[];
  /** now, the entry to prune at, the subject keys' prefix, the limit; then three per entry. */
  readonly argv: string[];
  /** The entries' ids, in order: the script answers refused entries by position. */
  readonly ids: string[] = [];
  size = 0;
  readonly done: Promise<ReadonlySet<string>>;
  resolve!: (refused: ReadonlySet<string>) => void;
  reject!: (error: Error) => void;

  constructor(tenantId: string, limit: number) {
    const subjectPrefix = RedisKeys.feedbackSubjectPrefix(tenantId);
    this.keys = [RedisKeys.feedbackSubjects(tenantId), ...VERDICTS.map((v) => RedisKeys.feedbackVerdict(tenantId, v))];
    this.argv = ["0", "0", subjectPrefix, String(limit)];
    this.done = new Promise<ReadonlySet<string>>((resolve, reject) => {
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

  put(tenantId: string, item: FeedbackItem, expiresAt: number, limit = 0): Promise<ReadonlySet<string>> {
    const now = this.clock.now();
    const ttlMs = expiresAt - now;
    if (ttlMs <= 0) return Promise.resolve(NONE_REFUSED);
    // A replay (no limit) and live writes (a limit) never share a call.
    const batchKey = limit === 0 ? tenantId : `${limit}\n${tenantId}`;
    let batch = this.batches.get(batchKey);
    if (batch === undefined) {
      batch = new PutBatch(tenantId, limit);
      this.batches.set(batchKey, batch);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    }
    batch.keys.push(
      RedisKeys.feedbackItem(tenantId, item.id),
      RedisKeys.feedbackSubject(tenantId, item.subject_type, item.subject_id),
    );
    batch.argv[0] = String(now);
    batch.argv.push(JSON.stringify(item), String(expiresAt), `${item.id}:${item.verdict}`);
    batch.ids.push(item.id);
    ++batch.size;
    if (++this.writes % PRUNE_EVERY === 0) batch.argv[1] = String(batch.size);
    if (batch.size >= MAX_BATCH) {
      this.batches.delete(batchKey);
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
      (refused) => {
        const positions = refused as number[];
        batch.resolve(
          positions.length === 0 ? NONE_REFUSED : new Set(positions.map((i) => batch.ids[i - 1] as string)),
        );
      },
      (error: Error) => batch.reject(error),
    );
  }

  async list(
    tenantId: string,
    subject: SubjectQuery,
    before: string | undefined,
    limit: number,
  ): Promise<FeedbackItem[]> {
    const types = subject.subjectType === undefined ? SUBJECT_TYPES : [subject.subjectType];
    const indexes = await Promise.all(
      types.map((type) => this.liveMembers(RedisKeys.feedbackSubject(tenantId, type, subject.subjectId))),
    );
    const ids = indexes
      .flat()
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

  async totals(tenantId: string): Promise<Partial<Record<Verdict, number>>> {
    const now = this.clock.now();
    const pipeline = this.redis.pipeline();
    for (const verdict of VERDICTS) {
      const key = RedisKeys.feedbackVerdict(tenantId, verdict);
      pipeline.zremrangebyscore(key, "-inf", now).zcount(key, `(${now}`, "+inf");
    }
    const replies = (await pipeline.exec()) ?? [];
    const totals: Partial<Record<Verdict, number>> = {};
    VERDICTS.forEach((verdict, i) => {
      const [error, count] = replies[2 * i + 1] ?? [];
      if (error) throw error;
      if (Number(count) > 0) totals[verdict] = Number(count);
    });
    return totals;
  }

  async subjects(tenantId: string, after: SubjectPosition | undefined, limit: number): Promise<SubjectCounts[]> {
    const key = RedisKeys.feedbackSubjects(tenantId);
    const now = this.clock.now();
    // Reads are rare next to writes: they keep the tenant's index small.
    void this.redis.zremrangebyscore(key, "-inf", now).catch(() => {});
    const picked: SubjectPosition[] = [];
    // From the cursor's score on; members at that very score up to the cursor's were shown already.
    for (let offset = 0; picked.length < limit; ) {
      const chunk = await this.redis.zrevrangebyscore(
        key,
        after ? String(after.lastExpiry) : "+inf",
        `(${now}`,
        "WITHSCORES",
        "LIMIT",
        offset,
        limit,
      );
      for (let i = 0; i < chunk.length && picked.length < limit; i += 2) {
        const member = chunk[i] as string;
        const lastExpiry = Number(chunk[i + 1]);
        if (after && lastExpiry === after.lastExpiry && byteOrder(member, memberOf(after)) >= 0) continue;
        const colon = member.indexOf(":");
        picked.push({
          subjectType: member.slice(0, colon) as SubjectType,
          subjectId: member.slice(colon + 1),
          lastExpiry,
        });
      }
      offset += chunk.length / 2;
      if (chunk.length / 2 < limit) break;
    }
    // Sent without waiting for each other: one round trip for the page.
    const perSubject = await Promise.all(
      picked.map(({ subjectType, subjectId }) =>
        this.liveMembers(RedisKeys.feedbackSubject(tenantId, subjectType, subjectId)),
      ),
    );
    return picked.map((position, i) => {
      const byVerdict: Partial<Record<Verdict, number>> = {};
      // A subject whose entries all expired since the index was read shows with no counts.
      for (const member of perSubject[i] ?? []) {
        const verdict = member.slice(member.indexOf(":") + 1) as Verdict;
        byVerdict[verdict] = (byVerdict[verdict] ?? 0) + 1;
      }
      return { ...position, byVerdict };
    });
  }

  /** Members whose score (expiry) is still ahead. */
  private liveMembers(key: string): Promise<string[]> {
    return this.redis.zrangebyscore(key, `(${this.clock.now()}`, "+inf");
  }
}
