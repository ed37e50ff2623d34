import type { Statement } from "bun:sqlite";
import type { Db } from "../../../db/client";
import type { Clock } from "../../lib/clock";
import type { WriteBatcher } from "../../lib/write-batcher";
import type { FeedbackItem, SubjectType, Verdict } from "./model";
import type { FeedbackStore, SubjectCounts, SubjectPosition, SubjectQuery } from "./store";

const NONE_REFUSED: ReadonlySet<string> = new Set();

/** Feedback without Redis: rows read only while `expires_at` is ahead, and swept once it passed. */
export class SqliteFeedbackStore implements FeedbackStore {
  private readonly insert: Statement;
  private readonly page: Statement<{ body: string }, [string, string, number, string, number]>;
  private readonly typedPage: Statement<{ body: string }, [string, string, string, number, string, number]>;
  private readonly totalsOf: Statement<{ verdict: string; n: number }, [string, number]>;
  private readonly subjectPage: Statement<
    { subject_type: SubjectType; subject_id: string; last_expiry: number },
    [string, number, number, string, string, number]
  >;
  private readonly subjectCounts: Statement<
    { subject_type: SubjectType; subject_id: string; verdict: string; n: number },
    [string, number, string]
  >;
  private readonly sweep: Statement;
  /** Counts the entry in, unless its subject holds `limit` already: a row back means counted. */
  private readonly countIn: Statement<{ held: number }, [string, string, string, number]>;
  private readonly expiredBySubject: Statement<
    { tenant_id: string; subject_type: string; subject_id: string; n: number },
    [number]
  >;
  private readonly countOut: Statement;
  private readonly dropEmpty: Statement;

  constructor(
    private readonly db: Db,
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
    this.typedPage = sqlite.prepare(
      `SELECT body FROM feedback_entries
       WHERE tenant_id = ? AND subject_type = ? AND subject_id = ? AND expires_at > ? AND id < ?
       ORDER BY id DESC LIMIT ?`,
    );
    this.totalsOf = sqlite.prepare(
      "SELECT verdict, count(*) AS n FROM feedback_entries WHERE tenant_id = ? AND expires_at > ? GROUP BY verdict",
    );
    // Ties in the order Redis gives them: `type:id` by bytes, which is type, then id (no type is
    // a prefix of another), and SQLite's BINARY collation compares UTF-8 bytes.
    this.subjectPage = sqlite.prepare(
      `SELECT subject_type, subject_id, max(expires_at) AS last_expiry FROM feedback_entries
       WHERE tenant_id = ?1 AND expires_at > ?2 GROUP BY subject_type, subject_id
       HAVING last_expiry < ?3 OR (last_expiry = ?3 AND (subject_type, subject_id) < (?4, ?5))
       ORDER BY last_expiry DESC, subject_type DESC, subject_id DESC LIMIT ?6`,
    );
    this.subjectCounts = sqlite.prepare(
      `SELECT subject_type, subject_id, verdict, count(*) AS n FROM feedback_entries
       WHERE tenant_id = ?1 AND expires_at > ?2
         AND (subject_type, subject_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?3))
       GROUP BY subject_type, subject_id, verdict`,
    );
    this.sweep = sqlite.prepare("DELETE FROM feedback_entries WHERE expires_at <= ?");
    this.countIn = sqlite.prepare(
      `INSERT INTO feedback_subject_counts (tenant_id, subject_type, subject_id, held) VALUES (?1, ?2, ?3, 1)
       ON CONFLICT DO UPDATE SET held = held + 1 WHERE held < ?4
       RETURNING held`,
    );
    this.expiredBySubject = sqlite.prepare(
      `SELECT tenant_id, subject_type, subject_id, count(*) AS n FROM feedback_entries
       WHERE expires_at <= ? GROUP BY tenant_id, subject_type, subject_id`,
    );
    this.countOut = sqlite.prepare(
      `UPDATE feedback_subject_counts SET held = held - ?4
       WHERE tenant_id = ?1 AND subject_type = ?2 AND subject_id = ?3`,
    );
    this.dropEmpty = sqlite.prepare("DELETE FROM feedback_subject_counts WHERE held <= 0");
  }

  async put(tenantId: string, item: FeedbackItem, expiresAt: number, limit = 0): Promise<ReadonlySet<string>> {
    const body = JSON.stringify(item);
    // In the batch's transaction: entries of one subject in one batch count each other.
    return this.batcher.run(() => {
      const counted = this.countIn.get(tenantId, item.subject_type, item.subject_id, limit > 0 ? limit : 2 ** 53);
      if (counted === null) return new Set([item.id]);
      this.insert.run(item.id, tenantId, item.subject_type, item.subject_id, item.verdict, body, expiresAt);
      return NONE_REFUSED;
    });
  }

  async list(
    tenantId: string,
    subject: SubjectQuery,
    before: string | undefined,
    limit: number,
  ): Promise<FeedbackItem[]> {
    // "~" sorts after every ULID character: no cursor means from the newest.
    const { subjectType, subjectId } = subject;
    const now = this.clock.now();
    const rows =
      subjectType === undefined
        ? this.page.all(tenantId, subjectId, now, before ?? "~", limit)
        : this.typedPage.all(tenantId, subjectType, subjectId, now, before ?? "~", limit);
    return rows.map((row) => JSON.parse(row.body) as FeedbackItem);
  }

  async totals(tenantId: string): Promise<Partial<Record<Verdict, number>>> {
    const totals: Partial<Record<Verdict, number>> = {};
    for (const row of this.totalsOf.all(tenantId, this.clock.now())) totals[row.verdict as Verdict] = row.n;
    return totals;
  }

  async subjects(tenantId: string, after: SubjectPosition | undefined, limit: number): Promise<SubjectCounts[]> {
    const now = this.clock.now();
    const page = this.subjectPage.all(
      tenantId,
      now,
      after?.lastExpiry ?? Number.MAX_SAFE_INTEGER,
      after?.subjectType ?? "",
      after?.subjectId ?? "",
      limit,
    );
    const keyOf = (row: { subject_type: string; subject_id: string }) => `${row.subject_type}:${row.subject_id}`;
    const counts = new Map<string, Partial<Record<Verdict, number>>>(page.map((row) => [keyOf(row), {}]));
    const subjects = JSON.stringify(page.map((row) => [row.subject_type, row.subject_id]));
    for (const row of this.subjectCounts.all(tenantId, now, subjects)) {
      const byVerdict = counts.get(keyOf(row));
      if (byVerdict) byVerdict[row.verdict as Verdict] = row.n;
    }
    return page.map((row) => ({
      subjectType: row.subject_type,
      subjectId: row.subject_id,
      lastExpiry: row.last_expiry,
      byVerdict: counts.get(keyOf(row)) ?? {},
    }));
  }

  /**
   * Deletes expired rows, and counts them out of their subjects (in one transaction); returns
   * how many. Reads already ignore them: this reclaims space, and room under the subject limit.
   */
  sweepExpired(): number {
    const now = this.clock.now();
    // IMMEDIATE: it reads, then writes, and another process committing between would fail it.
    return this.db.$client
      .transaction(() => {
        for (const row of this.expiredBySubject.all(now)) {
          this.countOut.run(row.tenant_id, row.subject_type, row.subject_id, row.n);
        }
        this.dropEmpty.run();
        return this.sweep.run(now).changes;
      })
      .immediate();
  }

  /**
   * At start-up: expired rows swept, and every subject's count taken again from its rows. Only
   * this version keeps the counts: rows an earlier one wrote or swept since (a rollback, an old
   * server still running after a migration) would otherwise leave them wrong for good.
   */
  reconcile(): void {
    const sqlite = this.db.$client;
    const now = this.clock.now();
    sqlite
      .transaction(() => {
        this.sweep.run(now);
        sqlite.run("DELETE FROM feedback_subject_counts");
        sqlite.run(
          `INSERT INTO feedback_subject_counts (tenant_id, subject_type, subject_id, held)
           SELECT tenant_id, subject_type, subject_id, count(*) FROM feedback_entries GROUP BY 1, 2, 3`,
        );
      })
      .immediate();
  }
}
