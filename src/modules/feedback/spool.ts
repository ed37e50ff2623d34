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
  private readonly dropExpired: Statement;
  private pending: number;

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
    this.dropExpired = sqlite.prepare("DELETE FROM feedback_spool WHERE expires_at <= ?");
    this.pending = sqlite.query<{ n: number }, []>("SELECT count(*) AS n FROM feedback_spool").get()?.n ?? 0;
    onDepth(this.pending);
  }

  /** Items waiting for Redis. While any wait, new feedback queues behind them to keep the order. */
  get depth(): number {
    return this.pending;
  }

  async add(tenantId: string, item: FeedbackItem, expiresAt: number): Promise<void> {
    const body = JSON.stringify(item);
    await this.batcher.run(() => this.append.run(tenantId, item.id, body, expiresAt));
    this.setDepth(this.pending + 1);
  }

  /**
   * Moves everything spooled into `store`, oldest first, a batch at a time; stops at the first
   * failure (the rest waits for the next attempt). Returns how many entries were replayed.
   */
  async replay(store: FeedbackStore): Promise<number> {
    let replayed = 0;
    for (;;) {
      const expired = this.dropExpired.run(this.clock.now()).changes;
      if (expired > 0) this.setDepth(this.pending - expired);
      const rows = this.batch.all(REPLAY_BATCH);
      if (rows.length === 0) {
        this.setDepth(0);
        return replayed;
      }
      // In order: ioredis sends them on one connection in this order, pipelined.
      await Promise.all(rows.map((row) => store.put(row.tenant_id, JSON.parse(row.body), row.expires_at)));
      const last = rows[rows.length - 1]?.seq ?? 0;
      const removed = this.remove.run(last).changes;
      this.setDepth(this.pending - removed);
      replayed += rows.length;
    }
  }

  private setDepth(depth: number): void {
    this.pending = Math.max(0, depth);
    this.onDepth(this.pending);
  }
}
