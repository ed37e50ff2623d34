import type { FeedbackItem, Verdict } from "./model";

/** A subject's live entries counted by verdict, and when its latest entry expires. */
export interface SubjectCounts {
  readonly subjectId: string;
  readonly lastExpiry: number;
  readonly byVerdict: Partial<Record<Verdict, number>>;
}

/** Where a page of subjects ended: its last subject. */
export interface SubjectPosition {
  readonly lastExpiry: number;
  readonly subjectId: string;
}

/**
 * Where feedback lives: Redis (src/modules/feedback/redis-store.ts) or, without Redis, SQLite
 * (sqlite-store.ts). Entries expire at `expiresAt` (ms, the service's clock) in both.
 */
export interface FeedbackStore {
  put(tenantId: string, item: FeedbackItem, expiresAt: number): Promise<void>;
  /** Live entries of one subject, newest first, with ids below `before` when given. */
  list(tenantId: string, subjectId: string, before: string | undefined, limit: number): Promise<FeedbackItem[]>;
  /** The tenant's live entries counted by verdict. */
  totals(tenantId: string): Promise<Partial<Record<Verdict, number>>>;
  /**
   * Up to `limit` subjects of the tenant with live entries, the one whose latest entry is newest
   * first (ties: the greater id first), after `after` when given.
   */
  subjects(tenantId: string, after: SubjectPosition | undefined, limit: number): Promise<SubjectCounts[]>;
}
