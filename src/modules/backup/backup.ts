import { Database } from "bun:sqlite";
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { existingDatabaseFile } from "../../../db/client";

export interface BackupResult {
  readonly file: string;
  readonly bytes: number;
  readonly ms: number;
}

/**
 * An online, consistent copy of DATA_DIR's database: `VACUUM INTO` reads one snapshot (in WAL
 * mode writers carry on meanwhile) and writes a compact single file, no WAL beside it. Written
 * to a temp file created 0600, fsynced, then renamed, so `file` is either complete or absent.
 */
export function backupDatabase(dataDir: string, target: string): BackupResult {
  const started = performance.now();
  const source = existingDatabaseFile(dataDir);
  const file = resolve(target);
  if (existsSync(file)) throw new Error(`${file} exists; refusing to overwrite it`);
  if (!existsSync(dirname(file))) throw new Error(`${dirname(file)} does not exist; create it first`);
  const partial = `${file}.partial-${process.pid}`;
  // Created here (0600, whatever the umask) because the copy holds users, sessions and the audit trail.
  closeSync(openSync(partial, "wx", 0o600));
  const db = new Database(source, { readonly: true });
  try {
    db.run("PRAGMA busy_timeout = 5000");
    db.run("VACUUM INTO ?", [partial]);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  } finally {
    db.close();
  }
  fsyncFile(partial);
  renameSync(partial, file);
  fsyncFile(dirname(file));
  return { file, bytes: statSync(file).size, ms: Math.round(performance.now() - started) };
}

function fsyncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
