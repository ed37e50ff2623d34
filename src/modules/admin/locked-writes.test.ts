import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { TestContext } from "../../testing/app";
import { contextWithAdmin, type LoggedIn, seedUser } from "../../testing/identity";

// Another process (a second server, the CLI) writing while a request reads and then writes: a
// deferred transaction's snapshot goes stale under that process's commit, and SQLite answers
// SQLITE_BUSY at once instead of waiting; an immediate one waits for the lock and reads afresh.
let ctx: TestContext;
let admin: LoggedIn;
beforeAll(async () => {
  ({ ctx, admin } = await contextWithAdmin());
});
afterAll(() => ctx.close());

/** Another process takes the write lock, writes, holds it `ms`, then commits; resolves once it holds it. */
async function writerHolding(ms: number): Promise<{ exited: Promise<number> }> {
  const path = join(ctx.deps.config.dataDir, "warden.db");
  const script = `
    const { Database } = require("bun:sqlite");
    const db = new Database(${JSON.stringify(path)});
    db.run("PRAGMA busy_timeout = 5000");
    db.run("BEGIN IMMEDIATE");
    db.run("INSERT INTO health_probe (id, checked_at) VALUES (2, 0) ON CONFLICT (id) DO UPDATE SET checked_at = checked_at + 1");
    require("node:fs").writeSync(1, "locked\\n");
    Bun.sleepSync(${ms});
    db.run("COMMIT");`;
  const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  expect(new TextDecoder().decode(value)).toContain("locked");
  // Wrapped: an async function returning the promise itself would wait for the exit.
  return { exited: proc.exited };
}

test.each([
  ["POST", "/v1/webhooks/endpoints", () => ({ url: "http://127.0.0.1:9/locked" }), 201],
  ["POST", "/v1/admin/api-keys", () => ({ name: "while locked" }), 201],
])("%s %s waits for another process's write lock instead of failing", async (method, path, body, status) => {
  const { exited } = await writerHolding(300);
  const res = await ctx.req(method, path, { headers: admin.auth, body: body() });
  expect(res.status).toBe(status);
  expect(await exited).toBe(0);
});

test("enabling a user waits for another process's write lock instead of failing", async () => {
  const user = await seedUser(ctx, "acme", "viewer");
  expect((await ctx.req("POST", `/v1/admin/users/${user.userId}/disable`, { headers: admin.auth })).status).toBe(200);
  const { exited } = await writerHolding(300);
  const res = await ctx.req("POST", `/v1/admin/users/${user.userId}/enable`, { headers: admin.auth });
  expect(res.status).toBe(200);
  expect(await exited).toBe(0);
});
