import { statfsSync, statSync } from "node:fs";
import { join } from "node:path";
import { DATABASE_FILE } from "../../../db/client";

/** DATA_DIR's filesystem (space left to us, not to root) and the database with its WAL. */
export function storageUsage(dataDir: string): { freeBytes: number; totalBytes: number; databaseBytes: number } {
  const fs = statfsSync(dataDir);
  const file = join(dataDir, DATABASE_FILE);
  return {
    freeBytes: fs.bavail * fs.bsize,
    totalBytes: fs.blocks * fs.bsize,
    databaseBytes: sizeOf(file) + sizeOf(`${file}-wal`),
  };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
