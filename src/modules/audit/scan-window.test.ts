import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";
import { SCAN_WINDOW } from "./query";

// A filter no index answers (here an outcome) reads at most SCAN_WINDOW seqs a page: a match deep
// in a long trail is reached over a few short pages, by next_cursor, instead of one long read
// that holds every other request up.
const EVENTS = SCAN_WINDOW * 2 + 10_000;
let ctx: TestContext;
let admin: LoggedIn;
let deepSeq: number;

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await seedAndLogin(ctx, "acme", "admin");
  const sqlite = ctx.deps.db.$client;
  const insert = sqlite.query(
    `INSERT INTO audit_events (id, ts, tenant_id, actor_type, actor_id, action, target_type, target_id, outcome,
       reason, ip, user_agent, request_id, params_hash, params, prev_hash, hash)
     VALUES (?, ?, 'acme', 'user', 'bulk', 'token.revoke', 'token', ?, ?, NULL, NULL, NULL, NULL, ?, '{}', ?, ?)`,
  );
  const hash = "f".repeat(64);
  const now = ctx.clock.now();
  sqlite.transaction(() => {
    for (let i = 0; i < EVENTS; i++) {
      insert.run(`bulk-${i}`, now, `jti-${i}`, i === 5 ? "denied" : "success", hash, hash, hash);
    }
  })();
  deepSeq = (sqlite.query("SELECT seq FROM audit_events WHERE id = 'bulk-5'").get() as { seq: number }).seq;
});
afterAll(() => ctx.close());

interface Page {
  events: { seq: number; outcome: string }[];
  next_cursor: number | null;
}

test("a rare outcome deep in the trail is reached page by page, each reading one window", async () => {
  const pages: Page[] = [];
  let cursor: number | null = null;
  do {
    const res = await ctx.req("GET", `/v1/audit?outcome=denied&limit=10${cursor === null ? "" : `&cursor=${cursor}`}`, {
      headers: admin.auth,
    });
    expect(res.status).toBe(200);
    const page = (await res.json()) as Page;
    pages.push(page);
    cursor = page.next_cursor;
  } while (cursor !== null && pages.length < 10);
  expect(cursor).toBeNull();
  // Empty pages say where to go on from; the one match comes in its window's page.
  const found = pages.flatMap((page) => page.events);
  expect(found.map((event) => event.seq)).toEqual([deepSeq]);
  expect(pages.length).toBeGreaterThanOrEqual(3);
  expect(pages.length).toBeLessThanOrEqual(Math.ceil(EVENTS / SCAN_WINDOW) + 1);
  for (const [i, page] of pages.slice(0, -1).entries()) {
    const next = pages[i + 1];
    if (page.events.length === 0) expect(page.next_cursor).toBeGreaterThan(next?.events[0]?.seq ?? 0);
  }
});

test("the export reads window after window to the same events", async () => {
  const res = await ctx.req("GET", "/v1/audit/export?outcome=denied", { headers: admin.auth });
  expect(res.status).toBe(200);
  const lines = (await res.text()).trim().split("\n").filter(Boolean);
  expect(lines.map((line) => (JSON.parse(line) as { seq: number }).seq)).toEqual([deepSeq]);
});

test("a filter an index answers (an actor) pages as before: full pages, to the end", async () => {
  const res = await ctx.req("GET", "/v1/audit?actor=bulk&limit=100", { headers: admin.auth });
  const page = (await res.json()) as Page;
  expect(page.events).toHaveLength(100);
  expect(page.next_cursor).toBe(page.events.at(-1)?.seq ?? null);
});
