import type { Database } from "bun:sqlite";
import type { Clock } from "../../lib/clock";
import type { Logger } from "../../lib/logger";
import { ulidFloor } from "../../lib/secrets";
import type { Worker } from "../../lib/worker";
import type { Metrics } from "../../plugins/metrics";

const RETENTION_INTERVAL_MS = 3600_000;
/** Rows per transaction: each batch holds the write lock for a few milliseconds at most. */
export const PRUNE_BATCH = 500;

export interface PruneResult {
  notifications: number;
  inboxItems: number;
  deliveries: number;
  attempts: number;
}

export const PRUNE_SQL = {
  // `+status`: walk the primary key from the oldest (past the waiting ones already seen), not
  // every finished delivery through the status index.
  finishedDeliveries: `SELECT id FROM webhook_deliveries
    WHERE id > ? AND id < ? AND +status IN ('delivered', 'dead') ORDER BY id LIMIT ?`,
  deleteAttempts: "DELETE FROM webhook_attempts WHERE delivery_id = ?",
  deleteDelivery: "DELETE FROM webhook_deliveries WHERE id = ?",
  // Inbox rows are keyed (user_id, notification_id): the users with rows are found by seeking
  // from one user to the next through that key, and each one's old rows are a range of it.
  nextUser: "SELECT user_id FROM inbox_items WHERE user_id > ? ORDER BY user_id LIMIT 1",
  deleteInbox: `DELETE FROM inbox_items WHERE rowid IN
    (SELECT rowid FROM inbox_items WHERE user_id = ?1 AND notification_id < ?2 LIMIT ?3)`,
  oldNotifications: "SELECT id FROM notifications WHERE id < ? ORDER BY id LIMIT ?",
  deleteNotification: "DELETE FROM notifications WHERE id = ?",
} as const;

/** The table each count of a PruneResult is of, as `notification_rows_pruned_total` labels it. */
const TABLE_OF: Record<keyof PruneResult, string> = {
  notifications: "notifications",
  inboxItems: "inbox_items",
  deliveries: "webhook_deliveries",
  attempts: "webhook_attempts",
};

const none = (): PruneResult => ({ notifications: 0, inboxItems: 0, deliveries: 0, attempts: 0 });

/**
 * Deletes what is older than a cut-off, by creation time (every id here is a ULID, so "older"
 * is a primary-key range): notifications with their inbox rows, and deliveries that are finished
 * (delivered or dead) with their attempts. Deliveries still waiting are never deleted.
 *
 * Work goes in batches of PRUNE_BATCH rows, one transaction each, with an event-loop turn in
 * between, so requests keep being served while a large backlog is pruned.
 */
export class NotificationPruner {
  private readonly sql;

  constructor(
    private readonly sqlite: Database,
    private readonly batch = PRUNE_BATCH,
  ) {
    const sql = <Params extends (string | number)[]>(text: string) => sqlite.query<{ id: string }, Params>(text);
    this.sql = {
      finishedDeliveries: sql<[string, string, number]>(PRUNE_SQL.finishedDeliveries),
      deleteAttempts: sql<[string]>(PRUNE_SQL.deleteAttempts),
      deleteDelivery: sql<[string]>(PRUNE_SQL.deleteDelivery),
      nextUser: sqlite.query<{ user_id: string }, [string]>(PRUNE_SQL.nextUser),
      deleteInbox: sql<[string, string, number]>(PRUNE_SQL.deleteInbox),
      oldNotifications: sql<[string, number]>(PRUNE_SQL.oldNotifications),
      deleteNotification: sql<[string]>(PRUNE_SQL.deleteNotification),
    };
  }

  /** Prunes everything older than `cutoffMs`; `stopping` is asked between batches. */
  async pruneOlderThan(cutoffMs: number, stopping: () => boolean = () => false): Promise<PruneResult> {
    const floor = ulidFloor(cutoffMs);
    const result = none();
    const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

    let after = "";
    for (let done = false; !done && !stopping(); await turn()) {
      // IMMEDIATE: a read that turns into a write fails outright (SQLITE_BUSY_SNAPSHOT) when another
      // process wrote in between; taking the write lock first waits for it instead.
      done = this.sqlite
        .transaction(() => {
          const ids = this.sql.finishedDeliveries.all(after, floor, this.batch);
          for (const { id } of ids) {
            result.attempts += this.sql.deleteAttempts.run(id).changes;
            result.deliveries += this.sql.deleteDelivery.run(id).changes;
            after = id;
          }
          return ids.length < this.batch;
        })
        .immediate();
    }

    let user = this.sql.nextUser.get("")?.user_id;
    while (user !== undefined && !stopping()) {
      const deleted = this.sql.deleteInbox.run(user, floor, this.batch).changes;
      result.inboxItems += deleted;
      if (deleted < this.batch) user = this.sql.nextUser.get(user)?.user_id;
      await turn();
    }
    // Only once no inbox row can point at them: see deleteNotifications.
    if (user !== undefined) return result;

    for (let done = false; !done && !stopping(); await turn()) {
      const deleted = this.deleteNotifications(floor);
      result.notifications += deleted;
      done = deleted < this.batch;
    }
    return result;
  }

  /**
   * With foreign keys off for the batch: their inbox rows are gone, and SQLite would otherwise
   * look for children of each deleted notification by scanning every inbox row (an index on
   * inbox_items.notification_id would spare that, at ~5 % of every notification create).
   * Nothing else runs on this connection in between: the batch is synchronous. What keeps the
   * inbox whole is that no code adds an inbox row to an existing notification: every inbox row is
   * written with its notification, so once the inbox pass has deleted those older than the
   * cut-off, none can appear. Foreign-key enforcement is set back to what it was.
   */
  private deleteNotifications(floor: string): number {
    const enforced = this.sqlite.query<{ foreign_keys: number }, []>("PRAGMA foreign_keys").get()?.foreign_keys;
    this.sqlite.run("PRAGMA foreign_keys = OFF");
    try {
      return this.sqlite
        .transaction(() => {
          const ids = this.sql.oldNotifications.all(floor, this.batch);
          for (const { id } of ids) this.sql.deleteNotification.run(id);
          return ids.length;
        })
        .immediate();
    } finally {
      this.sqlite.run(`PRAGMA foreign_keys = ${enforced === 0 ? "OFF" : "ON"}`);
    }
  }
}

/** Prunes past NOTIFICATION_RETENTION_DAYS a minute after start-up, then every hour. */
export function startNotificationRetention(
  sqlite: Database,
  days: number,
  deps: { clock: Clock; log: Logger; metrics: Metrics },
  firstRunMs = 60_000,
): Worker {
  const { clock, log, metrics } = deps;
  const pruner = new NotificationPruner(sqlite);
  let stopped = false;
  let running: Promise<void> | undefined;
  const run = () => {
    running ??= pruner
      .pruneOlderThan(clock.now() - days * 86_400_000, () => stopped)
      .then(
        (result) => {
          if (Object.values(result).some((count) => count > 0)) log.info({ ...result }, "old notifications pruned");
          for (const [field, table] of Object.entries(TABLE_OF) as [keyof PruneResult, string][])
            if (result[field] > 0) metrics.rowsPruned.inc({ table }, result[field]);
        },
        (error: Error) => log.error({ err: error }, "notification pruning failed"),
      )
      .finally(() => {
        running = undefined;
      });
  };
  const first = setTimeout(run, firstRunMs);
  const timer = setInterval(run, RETENTION_INTERVAL_MS);
  return {
    name: "notification-retention",
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
