import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Db } from "../../../db/client";
import type { Clock } from "../../lib/clock";
import type { Logger } from "../../lib/logger";
import type { Worker } from "../../lib/worker";
import { type AuditRow, checkpointMac } from "./trail";

export const ARCHIVE_DIR = "audit-archive";
const RETENTION_INTERVAL_MS = 6 * 3600_000;

/** Must stay identical to the trigger in db/migrations/0002_audit.sql: it is dropped and re-made around an archive. */
const NO_DELETE_TRIGGER = `CREATE TRIGGER \`audit_events_no_delete\` BEFORE DELETE ON \`audit_events\`
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;`;

export interface ArchiveResult {
  readonly archived: number;
  readonly file?: string;
  readonly throughSeq?: number;
}

/**
 * Moves events older than `cutoffMs` to `DATA_DIR/audit-archive/audit-<from>-<to>.ndjson` (fsynced
 * before anything is deleted) and records the last archived link as a checkpoint, so the chain
 * that remains still verifies from there. The only path that deletes audit rows: it lifts the
 * no-delete trigger inside its own transaction and restores it before committing.
 */
export function archiveOlderThan(
  db: Db,
  dataDir: string,
  cutoffMs: number,
  clock: Clock,
  auditKey: Uint8Array,
): ArchiveResult {
  const sqlite = db.$client;
  return sqlite
    .transaction((): ArchiveResult => {
      const last = sqlite
        .query<{ seq: number | null }, [number]>("SELECT max(seq) AS seq FROM audit_events WHERE ts < ?")
        .get(cutoffMs);
      const throughSeq = last?.seq;
      if (throughSeq === null || throughSeq === undefined) return { archived: 0 };
      const first =
        sqlite.query<{ seq: number }, []>("SELECT min(seq) AS seq FROM audit_events").get()?.seq ?? throughSeq;
      mkdirSync(join(dataDir, ARCHIVE_DIR), { recursive: true });
      const file = join(ARCHIVE_DIR, `audit-${first}-${throughSeq}.ndjson`);
      const fd = openSync(join(dataDir, file), "w", 0o600);
      let archived = 0;
      let head: AuditRow | undefined;
      try {
        for (const row of sqlite
          .query<AuditRow, [number]>("SELECT * FROM audit_events WHERE seq <= ? ORDER BY seq")
          .iterate(throughSeq)) {
          writeSync(fd, `${JSON.stringify(row)}\n`);
          archived++;
          head = row;
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (!head) return { archived: 0 };
      const checkpoint = { seq: head.seq, hash: head.hash, archive_file: file, events: archived };
      sqlite.run(
        "INSERT INTO audit_checkpoints (seq, hash, archived_at, archive_file, events, mac) VALUES (?, ?, ?, ?, ?, ?)",
        [head.seq, head.hash, clock.now(), file, archived, checkpointMac(auditKey, checkpoint)],
      );
      sqlite.run("DROP TRIGGER audit_events_no_delete");
      sqlite.run("DELETE FROM audit_events WHERE seq <= ?", [throughSeq]);
      sqlite.run(NO_DELETE_TRIGGER);
      return { archived, file, throughSeq };
    })
    .immediate();
}

/** Archives events past AUDIT_RETENTION_DAYS at start-up and every six hours. */
export function startAuditRetention(
  db: Db,
  dataDir: string,
  days: number,
  deps: { clock: Clock; auditKey: Uint8Array; log: Logger },
): Worker {
  const { clock, auditKey, log } = deps;
  const run = () => {
    try {
      const result = archiveOlderThan(db, dataDir, clock.now() - days * 86_400_000, clock, auditKey);
      if (result.archived > 0) log.info({ ...result }, "audit events archived");
    } catch (error) {
      log.error({ err: error }, "audit archive failed");
    }
  };
  run();
  const timer = setInterval(run, RETENTION_INTERVAL_MS);
  return {
    name: "audit-retention",
    async stop() {
      clearInterval(timer);
    },
  };
}
