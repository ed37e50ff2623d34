import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { WriteBatcher } from "./write-batcher";

function database() {
  const sqlite = new Database(":memory:");
  sqlite.run("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)");
  let commits = 0;
  // Counts COMMITs by watching the total-changes counter move between flushes.
  const batcher = new WriteBatcher(sqlite);
  const values = () =>
    sqlite
      .query<{ v: number }, []>("SELECT v FROM t ORDER BY v")
      .all()
      .map((row) => row.v);
  return { sqlite, batcher, values, commits: () => commits, countCommit: () => commits++ };
}

describe("WriteBatcher", () => {
  test("should commit writes queued in one turn together and resolve each with its own result", async () => {
    const { sqlite, batcher, values } = database();
    let transactionsSeen = 0;
    const results = await Promise.all(
      [1, 2, 3].map((v) =>
        batcher.run(() => {
          if (sqlite.inTransaction) transactionsSeen++;
          sqlite.run("INSERT INTO t (v) VALUES (?)", [v]);
          return v * 10;
        }),
      ),
    );
    expect(results).toEqual([10, 20, 30]);
    expect(transactionsSeen).toBe(3);
    expect(values()).toEqual([1, 2, 3]);
  });

  test("should roll back a failing write alone and reject only its promise", async () => {
    const { sqlite, batcher, values } = database();
    const outcomes = await Promise.allSettled([
      batcher.run(() => sqlite.run("INSERT INTO t (v) VALUES (1)")),
      batcher.run(() => {
        sqlite.run("INSERT INTO t (v) VALUES (2)");
        throw new Error("refused");
      }),
      batcher.run(() => sqlite.run("INSERT INTO t (v) VALUES (3)")),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(values()).toEqual([1, 3]);
  });

  test("should run each write once when none fails, and again (in savepoints) only in a batch where one failed", async () => {
    const { sqlite, batcher, values } = database();
    const runs = [0, 0, 0];
    const write = (i: number, v: number) => () => {
      runs[i] = (runs[i] ?? 0) + 1;
      return sqlite.run("INSERT INTO t (v) VALUES (?)", [v]).lastInsertRowid;
    };
    expect(await Promise.all([batcher.run(write(0, 1)), batcher.run(write(1, 2))])).toEqual([1, 2]);
    expect(runs).toEqual([1, 1, 0]);
    // v = 2 again breaks the UNIQUE constraint: the first pass rolls back, the second keeps 3 and 4.
    runs.fill(0);
    const outcomes = await Promise.allSettled([
      batcher.run(write(0, 3)),
      batcher.run(write(1, 2)),
      batcher.run(write(2, 4)),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(outcomes[0]).toEqual({ status: "fulfilled", value: 3 });
    expect(outcomes[2]).toEqual({ status: "fulfilled", value: 4 });
    expect(runs).toEqual([2, 2, 1]);
    expect(values()).toEqual([1, 2, 3, 4]);
  });

  test("a lone failing write should be rejected with its own error, leaving nothing behind", async () => {
    const { sqlite, batcher, values } = database();
    const outcome = batcher.run(() => {
      sqlite.run("INSERT INTO t (v) VALUES (5)");
      throw new Error("refused after writing");
    });
    await expect(outcome).rejects.toThrow("refused after writing");
    expect(values()).toEqual([]);
  });

  test("should settle nothing before the commit, and reject everything if the commit fails", async () => {
    const { sqlite, batcher, values } = database();
    // A deferred foreign key makes the COMMIT itself fail, after every write succeeded.
    sqlite.run("PRAGMA foreign_keys = ON");
    sqlite.run("CREATE TABLE parent (id INTEGER PRIMARY KEY)");
    sqlite.run("CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)");
    const outcomes = await Promise.allSettled([
      batcher.run(() => sqlite.run("INSERT INTO t (v) VALUES (7)")),
      batcher.run(() => sqlite.run("INSERT INTO child (p) VALUES (42)")),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected"]);
    expect(values()).toEqual([]);
    // Rolled back, not left open: the next batch commits on its own.
    expect(sqlite.inTransaction).toBe(false);
    await batcher.run(() => sqlite.run("INSERT INTO t (v) VALUES (8)"));
    expect(values()).toEqual([8]);
  });

  test("should start a new batch for writes queued after a flush", async () => {
    const { sqlite, batcher, values } = database();
    await batcher.run(() => sqlite.run("INSERT INTO t (v) VALUES (1)"));
    await batcher.run(() => sqlite.run("INSERT INTO t (v) VALUES (2)"));
    expect(values()).toEqual([1, 2]);
  });
});
