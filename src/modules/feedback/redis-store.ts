import type { Redis } from "ioredis";
import type { Clock } from "../../lib/clock";
import { RedisKeys } from "../../lib/redis-keys";
import type { FeedbackItem, Verdict } from "./model";
import type { FeedbackStore, SubjectCounts } from "./store";

/**
 * One entry in one atomic script (one round trip): the entry with its TTL, its member in the
 * subject's index and the subject in the tenant's index. Each index drops members that have
 * expired and keeps a TTL no shorter than its longest-lived member, so when the last entry
 * expires its indexes go with it: nothing is left behind. Replaying the same entry rewrites the
 * same keys and members, so a replay never duplicates.
 *
 * KEYS: item, subject index, subjects index.
 * ARGV: entry JSON, TTL ms, expiry (ms, the score), index member, subject id, now (ms), prune?
 * Pruning expired members runs on one write in PRUNE_EVERY (and on reads): reads filter by
 * score anyway, and it is most of the script's cost.
 */
const PUT_SCRIPT = `
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
local function index(key, member, gt)
  if ARGV[7] == '1' then redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[6]) end
  if gt then redis.call('ZADD', key, 'GT', ARGV[3], member) else redis.call('ZADD', key, ARGV[3], member) end
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
index(KEYS[2], ARGV[4], false)
index(KEYS[3], ARGV[5], true)
return 1
`;

interface RedisWithFeedback extends Redis {
  wardenFeedbackPut(
    item: string,
    subject: string,
    subjects: string,
    body: string,
    ttlMs: number,
    expiresAt: number,
    member: string,
    subjectId: string,
    now: number,
    prune: "1" | "0",
  ): Promise<number>;
}

/** One write in this many also drops expired members from the indexes it touches. */
const PRUNE_EVERY = 64;

export class RedisFeedbackStore implements FeedbackStore {
  private readonly redis: RedisWithFeedback;
  private writes = 0;

  constructor(
    redis: Redis,
    private readonly clock: Clock,
  ) {
    redis.defineCommand("wardenFeedbackPut", { numberOfKeys: 3, lua: PUT_SCRIPT });
    this.redis = redis as RedisWithFeedback;
  }

  async put(tenantId: string, item: FeedbackItem, expiresAt: number): Promise<void> {
    const now = this.clock.now();
    const ttlMs = expiresAt - now;
    if (ttlMs <= 0) return;
    await this.redis.wardenFeedbackPut(
      RedisKeys.feedbackItem(tenantId, item.id),
      RedisKeys.feedbackSubject(tenantId, item.subject_id),
      RedisKeys.feedbackSubjects(tenantId),
      JSON.stringify(item),
      ttlMs,
      expiresAt,
      `${item.id}:${item.verdict}`,
      item.subject_id,
      now,
      ++this.writes % PRUNE_EVERY === 0 ? "1" : "0",
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
