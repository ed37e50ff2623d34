import type { Statement } from "bun:sqlite";
import type { Db } from "../../../db/client";
import type { Clock } from "../../lib/clock";
import type { WriteBatcher } from "../../lib/write-batcher";
import { type FeedbackItem, type SubjectType, VERDICTS, type Verdict } from "./model";
import type { FeedbackStore, SubjectCounts, SubjectPosition, SubjectQuery } from "./store";

const NONE_REFUSED: ReadonlySet<string> = new Set();

type VerdictCounts = Record<Verdict, number>;

/** Feedback without Redis: rows read only while `expires_at` is ahead, and swept once it passed. */
export class SqliteFeedbackStore implements FeedbackStore {
  private readonly insert: Statement;
  private readonly page: Statement<{ body: string }, [string, string, number, string, number]>;
  private readonly typedPage: Statement<{ body: string }, [string, string, string, number, string, number]>;
  private readonly totalsOf: Statement<VerdictCounts, [string]>;
  private readonly subjectPage: Statement<
    { subject_type: SubjectType; subject_id: string; last_expiry: number } & VerdictCounts,
    [string, number, number, string, string, number]
  >;
  private readonly expiredUnswept: Statement<
    { subject_type: string; subject_id: string; verdict: Verdict; n: number },
    [number, string]
  >;
  private readonly sweep: Statement;
  /** By verdict: counts the entry in, unless its subject holds `limit` already (a row back means counted). */
  private readonly countIn: Record<Verdict, Statement<{ held: number }, [string, string, string, number, number]>>;
  private readonly expiredBySubject: Statement<
    { tenant_id: string; subject_type: string; subject_id: string; verdict: Verdict; n: number },
    [number]
  >;
  /** By verdict: counts expired entries out. */
  private readonly countOut: Record<Verdict, Statement>;
  /** By verdict: the tenant's totals, in and out. */
  private readonly tenantIn: Record<Verdict, Statement>;
  private readonly tenantOut: Record<Verdict, Statement>;
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
    // From the counts, which hold expired entries until the minute's sweep counts them out.
    this.totalsOf = sqlite.prepare(`SELECT ${VERDICTS.join(", ")} FROM feedback_tenant_counts WHERE tenant_id = ?`);
    // Ties in the order Redis gives them: `type:id` by bytes, which is type, then id (no type is
    // a prefix of another), and SQLite's BINARY collation compares UTF-8 bytes.
    this.subjectPage = sqlite.prepare(
      `SELECT subject_type, subject_id, last_expiry, ${VERDICTS.join(", ")} FROM feedback_subject_counts
       WHERE tenant_id = ?1 AND last_expiry > ?2
         AND (last_expiry < ?3 OR (last_expiry = ?3 AND (subject_type, subject_id) < (?4, ?5)))
       ORDER BY last_expiry DESC, subject_type DESC, subject_id DESC LIMIT ?6`,
    );
    // What the counts still hold but has expired since the last sweep (a minute's expiries at
    // most, off the expiry index): taken off, so the summary is as exact as the lists.
    this.expiredUnswept = sqlite.prepare(
      `SELECT subject_type, subject_id, verdict, count(*) AS n FROM feedback_entries INDEXED BY feedback_entries_expiry
       WHERE expires_at <= ?1 AND tenant_id = ?2 GROUP BY subject_type, subject_id, verdict`,
    );
    this.sweep = sqlite.prepare("DELETE FROM feedback_entries WHERE expires_at <= ?");
    const countIn = (verdict: Verdict) =>
      sqlite.prepare<{ held: number }, [string, string, string, number, number]>(
        `INSERT INTO feedback_subject_counts (tenant_id, subject_type, subject_id, held, ${verdict}, last_expiry)
         VALUES (?1, ?2, ?3, 1, 1, ?5)
         ON CONFLICT DO UPDATE SET held = held + 1, ${verdict} = ${verdict} + 1, last_expiry = max(last_expiry, ?5)
           WHERE held < ?4
         RETURNING held`,
      );
    this.countIn = Object.fromEntries(VERDICTS.map((verdict) => [verdict, countIn(verdict)])) as Record<
      Verdict,
      Statement<{ held: number }, [string, string, string, number, number]>
    >;
    this.expiredBySubject = sqlite.prepare(
      `SELECT tenant_id, subject_type, subject_id, verdict, count(*) AS n FROM feedback_entries
       WHERE expires_at <= ? GROUP BY tenant_id, subject_type, subject_id, verdict`,
    );
    const countOut = (verdict: Verdict) =>
      sqlite.prepare(
        `UPDATE feedback_subject_counts SET held = held - ?4, ${verdict} = ${verdict} - ?4
         WHERE tenant_id = ?1 AND subject_type = ?2 AND subject_id = ?3`,
      );
    this.countOut = Object.fromEntries(VERDICTS.map((verdict) => [verdict, countOut(verdict)])) as Record<
      Verdict,
      Statement
    >;
    const byVerdict = (sql: (verdict: Verdict) => string) =>
      Object.fromEntries(VERDICTS.map((verdict) => [verdict, sqlite.prepare(sql(verdict))])) as Record<
        Verdict,
        Statement
      >;
    this.tenantIn = byVerdict(
      (verdict) =>
        `INSERT INTO feedback_tenant_counts (tenant_id, ${verdict}) VALUES (?, 1)
         ON CONFLICT DO UPDATE SET ${verdict} = ${verdict} + 1`,
    );
    this.tenantOut = byVerdict(
      (verdict) => `UPDATE feedback_tenant_counts SET ${verdict} = ${verdict} - ?2 WHERE tenant_id = ?1`,
    );
    this.dropEmpty = sqlite.prepare("DELETE FROM feedback_subject_counts WHERE held <= 0");
  }

  async put(tenantId: string, item: FeedbackItem, expiresAt: number, limit = 0): Promise<ReadonlySet<string>> {
    const body = JSON.stringify(item);
    // In the batch's transaction: entries of one subject in one batch count each other.
    return this.batcher.run(() => {
      const counted = this.countIn[item.verdict as Verdict].get(
        tenantId,
        item.subject_type,
        item.subject_id,
        limit > 0 ? limit : 2 ** 53,
        expiresAt,
      );
      if (counted === null) return new Set([item.id]);
      this.tenantIn[item.verdict as Verdict].run(tenantId);
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
    // One read transaction: another process's sweep between the two reads would count its
    // entries out twice, or not at all.
    return this.db.$client.transaction(() => {
      const totals = { ...this.totalsOf.get(tenantId) } as Partial<VerdictCounts>;
      for (const row of this.expiredUnswept.all(this.clock.now(), tenantId)) {
        totals[row.verdict] = (totals[row.verdict] ?? 0) - row.n;
      }
      return nonZero(totals);
    })();
  }

  async subjects(tenantId: string, after: SubjectPosition | undefined, limit: number): Promise<SubjectCounts[]> {
    return this.db.$client.transaction(() => this.subjectsNow(tenantId, after, limit))();
  }

  private subjectsNow(tenantId: string, after: SubjectPosition | undefined, limit: number): SubjectCounts[] {
    const now = this.clock.now();
    const expired = new Map<string, Partial<VerdictCounts>>();
    for (const row of this.expiredUnswept.all(now, tenantId)) {
      const key = `${row.subject_type}:${row.subject_id}`;
      const counts = expired.get(key) ?? {};
      counts[row.verdict] = row.n;
      expired.set(key, counts);
    }
    const page = this.subjectPage.all(
      tenantId,
      now,
      after?.lastExpiry ?? Number.MAX_SAFE_INTEGER,
      after?.subjectType ?? "",
      after?.subjectId ?? "",
      limit,
    );
    return page.map((row) => ({
      subjectType: row.subject_type,
      subjectId: row.subject_id,
      lastExpiry: row.last_expiry,
      byVerdict: nonZero(less(row, expired.get(`${row.subject_type}:${row.subject_id}`))),
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
          this.countOut[row.verdict]?.run(row.tenant_id, row.subject_type, row.subject_id, row.n);
          this.tenantOut[row.verdict]?.run(row.tenant_id, row.n);
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
        sqlite.run("DELETE FROM feedback_tenant_counts");
        sqlite.run(
          `INSERT INTO feedback_tenant_counts (tenant_id, ${VERDICTS.join(", ")})
           SELECT tenant_id, ${VERDICTS.map((verdict) => `sum(verdict = '${verdict}')`).join(", ")}
             FROM feedback_entries GROUP BY 1`,
        );
        sqlite.run(
          `INSERT INTO feedback_subject_counts (tenant_id, subject_type, subject_id, held, ${VERDICTS.join(", ")}, last_expiry)
           SELECT tenant_id, subject_type, subject_id, count(*),
                  ${VERDICTS.map((verdict) => `sum(verdict = '${verdict}')`).join(", ")}, max(expires_at)
             FROM feedback_entries GROUP BY 1, 2, 3`,
        );
      })
      .immediate();
  }
}

/** The verdicts counted at least once: the summary names no verdict it has not seen. */
function nonZero(counts: Partial<VerdictCounts> | null): Partial<Record<Verdict, number>> {
  const seen: Partial<Record<Verdict, number>> = {};
  for (const verdict of VERDICTS) {
    const n = counts?.[verdict] ?? 0;
    if (n > 0) seen[verdict] = n;
  }
  return seen;
}

function less(counts: VerdictCounts, expired: Partial<VerdictCounts> | undefined): Partial<VerdictCounts> {
  if (!expired) return counts;
  const live: Partial<VerdictCounts> = {};
  for (const verdict of VERDICTS) live[verdict] = counts[verdict] - (expired[verdict] ?? 0);
  return live;
}
