import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "./client";
import { migrations } from "./migrations";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "warden-db-"));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("openDatabase", () => {
  test("should set the PRAGMAs every connection relies on", () => {
    const db = openDatabase(join(tempDir(), "nested", "dir"));
    const pragma = (name: string) => Object.values(db.$client.query(`PRAGMA ${name}`).get() as object)[0];
    expect(pragma("journal_mode")).toBe("wal");
    expect(pragma("busy_timeout")).toBe(5000);
    expect(pragma("foreign_keys")).toBe(1);
    expect(pragma("synchronous")).toBe(1); // NORMAL
    db.$client.close();
  });

  test("should keep the database file private to its owner", () => {
    const dir = tempDir();
    openDatabase(dir).$client.close();
    expect(statSync(join(dir, "warden.db")).mode & 0o777).toBe(0o600);
  });

  test("should apply every migration once, and again be a no-op", () => {
    const dir = tempDir();
    openDatabase(dir).$client.close();
    const db = openDatabase(dir);
    const rows = db.$client.query("SELECT hash, created_at FROM __drizzle_migrations").all();
    expect(rows).toHaveLength(migrations.length);
    const tables = db.$client.query("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    expect(tables.map((t) => t.name)).toContain("health_probe");
    db.$client.close();
  });

  test("should migrate exactly once when processes open the same file together", async () => {
    const dir = tempDir();
    const script = `import { openDatabase } from ${JSON.stringify(join(import.meta.dir, "client.ts"))}; openDatabase(process.argv[1]).$client.close();`;
    const procs = Array.from({ length: 4 }, () => Bun.spawn([process.execPath, "-e", script, dir], { stderr: "pipe" }));
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes).toEqual([0, 0, 0, 0]);
    const db = openDatabase(dir);
    expect(db.$client.query("SELECT * FROM __drizzle_migrations").all()).toHaveLength(migrations.length);
    db.$client.close();
  });
});
