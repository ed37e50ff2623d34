import type { Statement } from "bun:sqlite";
import type { Db } from "../../../db/client";
import type { Clock } from "../../lib/clock";
import type { WriteBatcher } from "../../lib/write-batcher";
import type { FeedbackItem } from "./model";
import type { FeedbackStore } from "./store";

interface SpoolRow {
  seq: number;
  tenant_id: string;
  body: string;
  expires_at: number;
}

const REPLAY_BATCH = 500;

/**
 * Feedback accepted while the configured Redis is down: appended to SQLite (a 202 means it is
 * on disk) and replayed into Redis in acceptance order, each entry with its original expiry.
 * Entries that expired while waiting are dropped. A row is deleted only after Redis took it, and
 * the Redis write is idempotent, so a crash mid-replay repeats writes but never duplicates.
 */
export class FeedbackSpool {
  private readonly append: Statement;
  private readonly batch: Statement<SpoolRow, [number]>;
  private readonly remove: Statement;
  private readonly count: Statement<{ n: number }, []>;
  /** Rows committed and not yet replayed: this process's and any other's on the same database. */
  private stored: number;
  /** Adds waiting for their commit: counted at once, so nothing overtakes them meanwhile. */
  private adding = 0;

  constructor(
    db: Db,
    private readonly clock: Clock,
    private readonly batcher: WriteBatcher,
    private readonly onDepth: (depth: number) => void,
  ) {
    const sqlite = db.$client;
    this.append = sqlite.prepare("INSERT INTO feedback_spool (tenant_id, id, body, expires_at) VALUES (?, ?, ?, ?)");
    this.batch = sqlite.prepare("SELECT seq, tenant_id, body, expires_at FROM feedback_spool ORDER BY seq LIMIT ?");
    this.remove = sqlite.prepare("DELETE FROM feedback_spool WHERE seq <= ?");
    this.count = sqlite.prepare("SELECT count(*) AS n FROM feedback_spool");
    this.stored = this.count.get()?.n ?? 0;
    onDepth(this.stored);
  }

  /**
   * Counts the table again: another process on this database may have spooled entries (and
   * stopped before it replayed them), which this one must replay, and queue behind, too.
   */
  refresh(): void {
    this.stored = this.count.get()?.n ?? 0;
    this.report();
  }

  /** Items waiting for Redis. While any wait, new feedback queues behind them to keep the order. */
  get depth(): number {
    return this.stored + this.adding;
  }

  async add(tenantId: string, item: FeedbackItem, expiresAt: number): Promise<void> {
    const body = JSON.stringify(item);
    this.adding++;
    this.report();
    try {
      await this.batcher.run(() => this.append.run(tenantId, item.id, body, expiresAt));
      this.stored++;
    } finally {
      this.adding--;
      this.report();
    }
  }

  /**
   * Moves everything spooled into `store`, oldest first, a batch at a time; stops at the first
   * failure (the rest waits for the next attempt). Returns how many entries were replayed.
   */
  async replay(store: FeedbackStore): Promise<number> {
    let replayed = 0;
    for (;;) {
      const rows = this.batch.all(REPLAY_BATCH);
      if (rows.length === 0) {
        // An add still waiting for its commit is not in the table yet, and stays counted.
        this.stored = 0;
        this.report();
        return replayed;
      }
      // Expired while waiting: dropped with the batch, not replayed (read in seq order, so
      // dropping them costs no scan of the table).
      const now = this.clock.now();
      const live = rows.filter((row) => row.expires_at > now);
      // In order: ioredis sends them on one connection in this order, pipelined.
      await Promise.all(live.map((row) => store.put(row.tenant_id, JSON.parse(row.body), row.expires_at)));
      const last = rows[rows.length - 1]?.seq ?? 0;
      const removed = this.remove.run(last).changes;
      this.stored = Math.max(0, this.stored - removed);
      this.report();
      replayed += live.length;
    }
  }

  private report(): void {
    this.onDepth(this.depth);
  }
}
