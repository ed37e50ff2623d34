import type { FeedbackItem, Verdict } from "./model";

/** A subject's live entries counted by verdict. */
export interface SubjectCounts {
  readonly subjectId: string;
  readonly byVerdict: Partial<Record<Verdict, number>>;
}

/**
 * Where feedback lives: Redis (src/modules/feedback/redis-store.ts) or, without Redis, SQLite
 * (sqlite-store.ts). Entries expire at `expiresAt` (ms, the service's clock) in both.
 */
export interface FeedbackStore {
  put(tenantId: string, item: FeedbackItem, expiresAt: number): Promise<void>;
  /** Live entries of one subject, newest first, with ids below `before` when given. */
  list(tenantId: string, subjectId: string, before: string | undefined, limit: number): Promise<FeedbackItem[]>;
  /** Every subject of the tenant that has live entries. */
  counts(tenantId: string): Promise<SubjectCounts[]>;
}
