import type { Database } from "bun:sqlite";
import type { Worker } from "../src/lib/worker";

/** How often the planner's statistics are brought up to date on a long-running connection. */
export const OPTIMIZE_EVERY_MS = 60 * 60_000;

/**
 * `PRAGMA optimize` at open sees the tables as they were then; a server that runs for months
 * while its tables grow from nothing would plan every query on no statistics (the audit trail's
 * rare filters then walked the whole trail). SQLite advises running it every few hours on a
 * long-lived connection; with `analysis_limit` set, each run reads a sample, not the tables.
 */
export function startStatistics(
  sqlite: Database,
  failed: (message: string) => void,
  everyMs = OPTIMIZE_EVERY_MS,
): Worker {
  const timer = setInterval(() => {
    try {
      sqlite.run("PRAGMA optimize = 0x10002");
    } catch (error) {
      failed((error as Error).message);
    }
  }, everyMs);
  return {
    name: "statistics",
    async stop() {
      clearInterval(timer);
    },
  };
}
