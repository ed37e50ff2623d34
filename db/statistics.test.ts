import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { startStatistics } from "./statistics";

test("statistics are taken again while the connection lives, for tables that grew since it opened", async () => {
  const sqlite = new Database(":memory:");
  sqlite.run("CREATE TABLE events (tenant TEXT, action TEXT)");
  sqlite.run("CREATE INDEX events_action ON events (tenant, action)");
  sqlite.run("PRAGMA analysis_limit = 1000");
  sqlite.run("PRAGMA optimize = 0x10002"); // at open: an empty table, nothing to analyse
  const insert = sqlite.prepare("INSERT INTO events VALUES ('acme', ?)");
  sqlite.transaction(() => {
    for (let i = 0; i < 50_000; i++) insert.run(i % 100 === 0 ? "rare" : "common");
  })();
  const stats = () =>
    sqlite.query("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'").get()
      ? sqlite.query<{ idx: string }, []>("SELECT idx FROM sqlite_stat1").all()
      : [];
  expect(stats()).toEqual([]);
  const failures: string[] = [];
  const worker = startStatistics(sqlite, (message) => failures.push(message), 20);
  await Bun.sleep(100);
  await worker.stop();
  expect(stats()).toEqual([{ idx: "events_action" }]);
  expect(failures).toEqual([]);
  sqlite.close();
});
