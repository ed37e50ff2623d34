import type { FeedbackItem, SubjectType, Verdict } from "./model";

/** What feedback is about: alert 42 and incident 42 are two subjects. */
export interface Subject {
  readonly subjectType: SubjectType;
  readonly subjectId: string;
}

/** Which entries a list reads: one subject's, or, without a type, every subject's with this id. */
export type SubjectQuery = Omit<Subject, "subjectType"> & { readonly subjectType?: SubjectType };

/** A subject's live entries counted by verdict, and when its latest entry expires. */
export interface SubjectCounts extends Subject {
  readonly lastExpiry: number;
  readonly byVerdict: Partial<Record<Verdict, number>>;
}

/** Where a page of subjects ended: its last subject. */
export interface SubjectPosition extends Subject {
  readonly lastExpiry: number;
}

/**
 * Where feedback lives: Redis (src/modules/feedback/redis-store.ts) or, without Redis, SQLite
 * (sqlite-store.ts). Entries expire at `expiresAt` (ms, the service's clock) in both.
 */
export interface FeedbackStore {
  /**
   * Stores an entry unless its subject already holds `limit` live entries (no limit without
   * one: a replay of entries accepted before). Answers the ids refused for that: with Redis, of
   * every entry written in the same call.
   */
  put(tenantId: string, item: FeedbackItem, expiresAt: number, limit?: number): Promise<ReadonlySet<string>>;
  /** Live entries of one subject (of every type with this id when no type is given), newest first, with ids below `before` when given. */
  list(tenantId: string, subject: SubjectQuery, before: string | undefined, limit: number): Promise<FeedbackItem[]>;
  /** The tenant's live entries counted by verdict. */
  totals(tenantId: string): Promise<Partial<Record<Verdict, number>>>;
  /**
   * Up to `limit` subjects of the tenant with live entries, the one whose latest entry is newest
   * first (ties: the greater `type:id` by its UTF-8 bytes first), after `after` when given.
   */
  subjects(tenantId: string, after: SubjectPosition | undefined, limit: number): Promise<SubjectCounts[]>;
}
