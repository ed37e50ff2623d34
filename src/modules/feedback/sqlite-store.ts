import type { Statement } from "bun:sqlite";
import type { Db } from "../../../db/client";
import type { Clock } from "../../lib/clock";
import type { WriteBatcher } from "../../lib/write-batcher";
import type { FeedbackItem, Verdict } from "./model";
import type { FeedbackStore, SubjectCounts } from "./store";

/** Feedback without Redis: rows read only while `expires_at` is ahead, and swept once it passed. */
export class SqliteFeedbackStore implements FeedbackStore {
  private readonly insert: Statement;
  private readonly page: Statement<{ body: string }, [string, string, number, string, number]>;
  private readonly grouped: Statement<{ subject_id: string; verdict: string; n: number }, [string, number]>;
  private readonly sweep: Statement;

  constructor(
    db: Db,
    private readonly clock: Clock,
    private readonly batcher: WriteBatcher,
  ) {
    const sqlite = db.$client;
    this.insert = sqlite.prepare(
      `INSERT OR IGNORE INTO feedback_entries (id, tenant_id, subject_type, subject_id, verdict, body, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.page = sqlite.prepare(
      `SELECT body FROM feedback_entries
       WHERE tenant_id = ? AND subject_id = ? AND expires_at > ? AND id < ?
       ORDER BY id DESC LIMIT ?`,
    );
    this.grouped = sqlite.prepare(
      `SELECT subject_id, verdict, count(*) AS n FROM feedback_entries
       WHERE tenant_id = ? AND expires_at > ? GROUP BY subject_id, verdict ORDER BY subject_id`,
    );
    this.sweep = sqlite.prepare("DELETE FROM feedback_entries WHERE expires_at <= ?");
  }

  async put(tenantId: string, item: FeedbackItem, expiresAt: number): Promise<void> {
    const body = JSON.stringify(item);
    await this.batcher.run(() =>
      this.insert.run(item.id, tenantId, item.subject_type, item.subject_id, item.verdict, body, expiresAt),
    );
  }

  async list(tenantId: string, subjectId: string, before: string | undefined, limit: number): Promise<FeedbackItem[]> {
    // "~" sorts after every ULID character: no cursor means from the newest.
    return this.page
      .all(tenantId, subjectId, this.clock.now(), before ?? "~", limit)
      .map((row) => JSON.parse(row.body) as FeedbackItem);
  }

  async counts(tenantId: string): Promise<SubjectCounts[]> {
    const subjects = new Map<string, Partial<Record<Verdict, number>>>();
    for (const row of this.grouped.all(tenantId, this.clock.now())) {
      const byVerdict = subjects.get(row.subject_id) ?? {};
      byVerdict[row.verdict as Verdict] = row.n;
      subjects.set(row.subject_id, byVerdict);
    }
    return [...subjects].map(([subjectId, byVerdict]) => ({ subjectId, byVerdict }));
  }

  /** Deletes expired rows; returns how many. Reads already ignore them: this only reclaims space. */
  sweepExpired(): number {
    return this.sweep.run(this.clock.now()).changes;
  }
}
