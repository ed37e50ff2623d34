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
  });

  test("should start a new batch for writes queued after a flush", async () => {
    const { sqlite, batcher, values } = database();
    await batcher.run(() => sqlite.run("INSERT INTO t (v) VALUES (1)"));
    await batcher.run(() => sqlite.run("INSERT INTO t (v) VALUES (2)"));
    expect(values()).toEqual([1, 2]);
  });
});
