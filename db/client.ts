import { Database } from "bun:sqlite";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { type BunSQLiteDatabase, drizzle } from "drizzle-orm/bun-sqlite";
import { applyMigrations } from "./migrate";
import { migrations } from "./migrations";
import * as schema from "./schema";

export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };

export const DATABASE_FILE = "warden.db";

/** DATA_DIR cannot hold the database: a configuration problem (the command exits 2). */
export class DataDirError extends Error {
  constructor(dataDir: string, problem: string) {
    super(`cannot use DATA_DIR ${dataDir}: ${problem}`);
    this.name = "DataDirError";
  }
}

export interface OpenOptions {
  /** Apply pending migrations (default true). */
  migrate?: boolean;
}

/** Opens DATA_DIR/warden.db with the PRAGMAs every connection needs, then migrates. */
export function openDatabase(dataDir: string, options: OpenOptions = {}): Db {
  prepareDataDir(dataDir);
  const file = join(dataDir, DATABASE_FILE);
  let sqlite: Database;
  try {
    sqlite = new Database(file, { create: true, strict: true });
  } catch (error) {
    throw new Error(`cannot use DATA_DIR ${dataDir}: ${file}: ${(error as Error).message}`);
  }
  // Users, sessions and the audit trail live here: not for other accounts on the machine.
  chmodSync(file, 0o600);
  // busy_timeout first: switching to WAL needs a lock another process may briefly hold.
  sqlite.run("PRAGMA busy_timeout = 5000");
  sqlite.run("PRAGMA journal_mode = WAL");
  // NORMAL in WAL mode is durable across process crashes (kill -9); only power loss can drop
  // the last commits, which FULL would guard at one fsync per commit.
  sqlite.run("PRAGMA synchronous = NORMAL");
  sqlite.run("PRAGMA foreign_keys = ON");
  // 64 MiB of page cache (the default is 2 MiB): the audit trail's indexes stay in memory.
  sqlite.run("PRAGMA cache_size = -65536");
  // Without it, INSERT OR REPLACE deletes a conflicting row without firing DELETE triggers,
  // which would slip past the audit trail's append-only guard.
  sqlite.run("PRAGMA recursive_triggers = ON");
  if (options.migrate !== false) applyMigrations(sqlite, migrations);
  // Fresh statistics let the planner pick the narrow index for a rare audit filter; with a limit
  // on rows examined this stays fast on a large database.
  sqlite.run("PRAGMA analysis_limit = 1000");
  sqlite.run("PRAGMA optimize = 0x10002");
  return drizzle({ client: sqlite, schema }) as Db;
}

/**
 * Creates DATA_DIR if needed and checks that this process can write there. A problem is one line
 * naming the variable and the path: mkdir's and SQLite's own words ("EEXIST: file already
 * exists", "unable to open database file") name neither.
 */
function prepareDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw dataDirProblem(dataDir, error);
  }
  try {
    // SQLite writes its WAL and shared-memory files beside the database, and the CLI its master key.
    accessSync(dataDir, constants.W_OK | constants.X_OK);
  } catch {
    throw new DataDirError(dataDir, "it is not writable by this user");
  }
}

/**
 * DATA_DIR's database file, or an error naming it. For commands that act on an existing
 * deployment: opening creates an empty database (and then a master key) there, so a mistyped
 * DATA_DIR would verify as intact, print a key, or rotate keys no server uses, and exit 0.
 */
export function existingDatabaseFile(dataDir: string): string {
  const file = join(dataDir, DATABASE_FILE);
  if (existsSync(file)) return file;
  // A DATA_DIR that is a file, or under one, is the path's mistake, in the words creating it gives.
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dataDir).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOTDIR") throw dataDirProblem(dataDir, error);
    isDirectory = true;
  }
  if (!isDirectory) throw dataDirProblem(dataDir, { code: "EEXIST" });
  throw new Error(`no database at ${file}: check DATA_DIR`);
}

/**
 * What a DATA_DIR that cannot be created or used says: a configuration error where the path is
 * the mistake (a file, under a file, not permitted); the system's own words (a full disk, too
 * many open files) otherwise, which no change of DATA_DIR mends.
 */
function dataDirProblem(dataDir: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  const problem =
    code === "EEXIST"
      ? "it is a file, not a directory"
      : code === "ENOTDIR"
        ? "a part of its path is a file, not a directory"
        : code === "EACCES" || code === "EPERM"
          ? "no permission to create it"
          : undefined;
  return problem
    ? new DataDirError(dataDir, problem)
    : new Error(`cannot use DATA_DIR ${dataDir}: ${(error as Error).message}`);
}

/** Like `openDatabase`, refusing a DATA_DIR that holds no database rather than creating one there. */
export function openExistingDatabase(dataDir: string): Db {
  existingDatabaseFile(dataDir);
  return openDatabase(dataDir);
}
