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
      const denied = i === 5 || (i > 1000 && i % 9973 === 0);
      insert.run(`bulk-${i}`, now + i, `jti-${i}`, denied ? "denied" : "success", hash, hash, hash);
    }
  })();
  deepSeq = (sqlite.query("SELECT seq FROM audit_events WHERE id = 'bulk-5'").get() as { seq: number }).seq;
});
afterAll(() => ctx.close());

interface Page {
  events: { seq: number; outcome: string }[];
  next_cursor: number | null;
}

/** Every page of `query`, following next_cursor (at most 40). */
async function pagesOf(query: string): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: number | null = null;
  do {
    const res = await ctx.req("GET", `/v1/audit?${query}${cursor === null ? "" : `&cursor=${cursor}`}`, {
      headers: admin.auth,
    });
    expect(res.status).toBe(200);
    const page = (await res.json()) as Page;
    pages.push(page);
    cursor = page.next_cursor;
  } while (cursor !== null && pages.length < 40);
  expect(cursor).toBeNull();
  return pages;
}

const deniedSeqs = () =>
  (
    ctx.deps.db.$client
      .query("SELECT seq FROM audit_events WHERE tenant_id = 'acme' AND outcome = 'denied' ORDER BY seq DESC")
      .all() as { seq: number }[]
  ).map((row) => row.seq);

test("paging across windows returns every match once, none skipped at a window's edge", async () => {
  const found = (await pagesOf("outcome=denied&limit=3")).flatMap((page) => page.events.map((event) => event.seq));
  expect(found).toEqual(deniedSeqs());
});

test("a time range bounds the windows: no empty pages beyond it", async () => {
  const ts = (i: number) => new Date(ctx.clock.now() + i).toISOString();
  // Only the last 100 events: one window, and no cursor down to the start of the trail.
  const recent = await pagesOf(`outcome=denied&from=${ts(EVENTS - 100)}`);
  expect(recent).toEqual([{ events: [], next_cursor: null }]);
  // Only the first events: the window starts at the range's end, and the match is on the first page.
  const early = await pagesOf(`outcome=denied&to=${ts(10)}`);
  expect(early[0]?.events.map((event) => event.seq)).toEqual([deepSeq]);
  expect(early).toHaveLength(1);
});

test("a rare outcome deep in the trail is reached page by page, each reading one window", async () => {
  const pages = await pagesOf("outcome=denied&limit=20");
  // Pages short of the limit say where to go on from; each match comes in its window's page.
  expect(pages.flatMap((page) => page.events.map((event) => event.seq))).toEqual(deniedSeqs());
  expect(pages.length).toBeGreaterThanOrEqual(3);
  expect(pages.length).toBeLessThanOrEqual(Math.ceil(EVENTS / SCAN_WINDOW) + 1);
  for (const page of pages.slice(0, -1)) {
    expect(page.events.length).toBeLessThan(20);
    expect(page.next_cursor).toBeLessThan(page.events.at(-1)?.seq ?? Number.MAX_SAFE_INTEGER);
  }
});

test("the export reads window after window to the same events", async () => {
  const res = await ctx.req("GET", "/v1/audit/export?outcome=denied", { headers: admin.auth });
  expect(res.status).toBe(200);
  const lines = (await res.text()).trim().split("\n").filter(Boolean);
  expect(lines.map((line) => (JSON.parse(line) as { seq: number }).seq)).toEqual(deniedSeqs());
});

test("a filter an index answers (an actor) pages as before: full pages, to the end", async () => {
  const res = await ctx.req("GET", "/v1/audit?actor=bulk&limit=100", { headers: admin.auth });
  const page = (await res.json()) as Page;
  expect(page.events).toHaveLength(100);
  expect(page.next_cursor).toBe(page.events.at(-1)?.seq ?? null);
});
