import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CheckpointReport } from "./checkpoint-thread";
import { startCheckpointer } from "./checkpointer";
import { DATABASE_FILE, openDatabase } from "./client";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshDatabase() {
  const dir = mkdtempSync(join(tmpdir(), "warden-checkpoint-"));
  dirs.push(dir);
  const sqlite = openDatabase(dir).$client;
  sqlite.run("CREATE TABLE filler (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)");
  return { sqlite, file: join(dir, DATABASE_FILE) };
}

const autocheckpoint = (sqlite: Database) =>
  sqlite.query<{ wal_autocheckpoint: number }, []>("PRAGMA wal_autocheckpoint").get()?.wal_autocheckpoint;

/** `pages` 4 KiB pages' worth of rows, one transaction per 100 rows, as a server commits. */
function write(sqlite: Database, pages: number, from = 0): number {
  const insert = sqlite.prepare("INSERT INTO filler (id, payload) VALUES (?, ?)");
  const rows = pages * 2;
  for (let at = 0; at < rows; at += 100) {
    sqlite.transaction(() => {
      for (let i = at; i < Math.min(at + 100, rows); i++) insert.run(from + i, "x".repeat(2000));
    })();
  }
  return from + rows;
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

describe("background WAL checkpoints", () => {
  test("should copy the log into the database on its own thread while commits only append", async () => {
    const { sqlite, file } = freshDatabase();
    const reports: CheckpointReport[] = [];
    const failures: string[] = [];
    let started = false;
    const checkpointer = startCheckpointer(
      sqlite,
      file,
      {
        started: () => {
          started = true;
        },
        checkpointed: (report) => reports.push(report),
        failed: (message) => failures.push(message),
      },
      20,
    );
    expect(autocheckpoint(sqlite)).toBe(16_384);
    await until(() => started);

    // 3000 pages: three times what SQLite's default would checkpoint inline, inside a commit.
    const written = write(sqlite, 3000);
    // Reports of checkpoints that ran while we were still writing arrive only now: drop them.
    await Bun.sleep(100);
    reports.length = 0;
    await until(() => reports.some((report) => report.checkpointed > 0 && report.checkpointed === report.log));
    expect(failures).toEqual([]);

    // Copied means in the database file itself: a reader that ignores the log sees every row.
    const copy = join(dirs[dirs.length - 1] ?? "", "copy.db");
    await Bun.write(copy, Bun.file(file));
    const reader = new Database(copy, { readonly: true });
    expect(reader.query<{ n: number }, []>("SELECT count(*) AS n FROM filler").get()?.n).toBe(written);
    reader.close();

    await checkpointer.stop();
    expect(autocheckpoint(sqlite)).toBe(1000);
    expect(sqlite.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get()?.integrity_check).toBe("ok");
    sqlite.close();
  });

  test("should hand checkpoints back to the committing connection when its thread cannot start", async () => {
    const { sqlite } = freshDatabase();
    const failures: string[] = [];
    const checkpointer = startCheckpointer(
      sqlite,
      "/nonexistent/dir/warden.db",
      { failed: (m) => failures.push(m) },
      20,
    );
    await until(() => failures.length > 0);
    expect(autocheckpoint(sqlite)).toBe(1000);
    await checkpointer.stop();
    sqlite.close();
  });
});
