import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DATABASE_FILE } from "../../../db/client";
import { createTestContext, type TestContext } from "../../testing/app";
import { createAdminWithCli, passwordLogin } from "../../testing/cli";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";
import { startServer, type TestServer } from "../../testing/server";
import type { SecurityEvent } from "./hook";
import type { AuditRow } from "./trail";

interface PublicEvent {
  seq: number;
  ts: string;
  tenant_id: string;
  actor: { type: string; id: string | null };
  action: string;
  target: { type: string; id: string } | null;
  outcome: string;
  request_id: string | null;
  params: Record<string, unknown>;
}

let ctx: TestContext;
let admin: LoggedIn;
let globexAdmin: LoggedIn;
let t0: number;

const SPECS: [actor: string, action: SecurityEvent["action"], target: string, outcome: SecurityEvent["outcome"]][] = [
  ["u1", "auth.login", "t1", "success"],
  ["u2", "auth.login_failed", "t1", "failure"],
  ["u1", "token.revoke", "t2", "success"],
  ["u2", "auth.logout", "t2", "success"],
  ["u1", "token.refresh_reuse", "t1", "denied"],
  ["u1", "user.create", "t3", "success"],
  ["u2", "token.refresh", "t3", "success"],
];

function record(tenant: string, [actor, action, target, outcome]: (typeof SPECS)[number]): void {
  ctx.deps.security.audit.record({
    action,
    outcome,
    tenantId: tenant,
    actor: { type: "user", id: actor },
    target: { type: "thing", id: target },
  });
}

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await seedAndLogin(ctx, "acme", "admin");
  globexAdmin = await seedAndLogin(ctx, "globex", "admin");
  t0 = ctx.clock.now();
  for (let round = 0; round < 2; round++) {
    for (const spec of SPECS) {
      ctx.clock.advance(1000);
      record("acme", spec);
      record("globex", spec);
    }
  }
  record("globex", ["u1", "user.create", "globex-only", "success"]);
});
afterAll(() => ctx.close());

const get = (path: string, who: LoggedIn = admin, requestId?: string) =>
  ctx.req("GET", path, { headers: { ...who.auth, ...(requestId ? { "x-request-id": requestId } : {}) } });

/** Every page of `GET /v1/audit?<query>`, following next_cursor; `between` runs after each page. */
async function pages(query: string, limit = 4, between?: () => void, who = admin): Promise<PublicEvent[]> {
  const seen: PublicEvent[] = [];
  let cursor: number | null = null;
  do {
    const res = await get(`/v1/audit?${query}&limit=${limit}${cursor === null ? "" : `&cursor=${cursor}`}`, who);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { events: PublicEvent[]; next_cursor: number | null };
    expect(page.events.length).toBeLessThanOrEqual(limit);
    seen.push(...page.events);
    cursor = page.next_cursor;
    between?.();
  } while (cursor !== null);
  return seen;
}

/** The tenant's stored events that `keep` selects, newest first: what the API must answer. */
const expected = (keep: (row: AuditRow) => boolean, tenant = "acme") =>
  ctx
    .auditEvents()
    .filter((row) => row.tenant_id === tenant && keep(row))
    .map((row) => row.seq)
    .reverse();

describe("GET /v1/audit filters", () => {
  const iso = (offset: number) => new Date(t0 + offset).toISOString();
  test.each<[string, () => string, (row: AuditRow) => boolean]>([
    ["actor", () => "actor=u1", (row) => row.actor_id === "u1"],
    ["action prefix", () => "action=auth.", (row) => row.action.startsWith("auth.")],
    ["action prefix token.", () => "action=token.", (row) => row.action.startsWith("token.")],
    ["exact action", () => "action=token.revoke", (row) => row.action === "token.revoke"],
    ["target", () => "target=t2", (row) => row.target_id === "t2"],
    ["outcome failure", () => "outcome=failure", (row) => row.outcome === "failure"],
    ["outcome denied", () => "outcome=denied", (row) => row.outcome === "denied"],
    ["from (inclusive)", () => `from=${iso(10_000)}`, (row) => row.ts >= t0 + 10_000],
    ["to (exclusive)", () => `to=${iso(4000)}`, (row) => row.ts < t0 + 4000],
    ["from + to", () => `from=${iso(3000)}&to=${iso(7000)}`, (row) => row.ts >= t0 + 3000 && row.ts < t0 + 7000],
    [
      "actor + action + outcome",
      () => "actor=u1&action=token.&outcome=success",
      (row) => row.actor_id === "u1" && row.action.startsWith("token.") && row.outcome === "success",
    ],
  ])("%s should narrow to exactly the matching events, newest first", async (_name, query, keep) => {
    const want = expected(keep);
    const all = expected(() => true);
    expect(want.length).toBeGreaterThan(0);
    expect(want.length).toBeLessThan(all.length);
    const got = await pages(query());
    expect(got.map((event) => event.seq)).toEqual(want);
    expect(got.every((event) => event.tenant_id === "acme")).toBe(true);
  });

  test("events should come newest first (seq and time never increase)", async () => {
    const got = await pages("action=auth.", 3);
    for (let i = 1; i < got.length; i++) {
      expect(got[i]?.seq ?? 0).toBeLessThan(got[i - 1]?.seq ?? 0);
      expect(Date.parse(got[i]?.ts ?? "")).toBeLessThanOrEqual(Date.parse(got[i - 1]?.ts ?? ""));
    }
  });

  test.each(["from", "to"])("a bad %s should be a 4xx naming the field, for the list and the export", async (field) => {
    // Not a time, a date alone, a day the month lacks (once read as 2 March), a browser's Date.toString().
    const bad = ["yesterday", "2026-12-01", "2026-02-30T00:00:00Z", "Tue Dec 01 2026 10:00:00 GMT+0000"];
    for (const path of ["/v1/audit", "/v1/audit/export"]) {
      for (const value of bad) {
        const res = await get(`${path}?${field}=${encodeURIComponent(value)}`);
        expect(res.status).toBe(422);
        const problem = await res.json();
        expect(problem.errors).toContainEqual(
          expect.objectContaining({ in: "query", field, message: expect.stringContaining("RFC 3339") }),
        );
      }
    }
  });

  test("an action filter no action could match is a 422 naming it, not an empty page", async () => {
    for (const path of ["/v1/audit", "/v1/audit/export"]) {
      for (const value of [".", "..", "auth..login", ".auth", "Auth.login", "auth login"]) {
        const res = await get(`${path}?action=${encodeURIComponent(value)}`);
        expect({ value, status: res.status }).toEqual({ value, status: 422 });
        const problem = await res.json();
        expect(problem.errors).toContainEqual(
          expect.objectContaining({ in: "query", field: "action", message: expect.stringContaining("auth.login") }),
        );
      }
    }
    expect((await get("/v1/audit?action=no_such.action")).status).toBe(200);
  });
});

describe("time bounds", () => {
  const iso = (offset: number) => new Date(t0 + offset).toISOString();

  test("a bound finer than a millisecond is rounded up: from stays inclusive, to exclusive", async () => {
    const row = ctx.auditEvents().find((r) => r.tenant_id === "acme" && r.ts > t0) as AuditRow;
    const at = new Date(row.ts).toISOString(); // …:ss.mmmZ
    const past = at.replace("Z", "1Z"); // a tenth of a millisecond after the event
    const seqs = async (query: string) => (await pages(query, 200)).map((event) => event.seq);
    expect(await seqs(`from=${past}&to=${iso(20_000)}`)).not.toContain(row.seq);
    expect(await seqs(`from=${at}&to=${iso(20_000)}`)).toContain(row.seq);
    expect(await seqs(`to=${past}`)).toContain(row.seq);
    expect(await seqs(`to=${at}`)).not.toContain(row.seq);
  });

  test("from later than to is a 422 naming both, for the list and the export", async () => {
    for (const path of ["/v1/audit", "/v1/audit/export"]) {
      const res = await get(`${path}?from=${iso(2000)}&to=${iso(1000)}`);
      expect(res.status).toBe(422);
      expect((await res.json()).errors.map((e: { field: string }) => e.field)).toEqual(["from", "to"]);
    }
    expect((await get(`/v1/audit?from=0001-01-01T00:00:00Z&to=${iso(1000)}`)).status).toBe(200);
  });
});

describe("query parameters", () => {
  test("one the route does not take is a 422 naming it, not a filter silently dropped", async () => {
    for (const [path, field] of [
      ["/v1/audit?actors=u1", "actors"],
      ["/v1/audit/export?limit=5", "limit"],
      ["/v1/audit/export?cursor=3", "cursor"],
    ] as const) {
      const res = await get(path);
      expect(res.status).toBe(422);
      const problem = await res.json();
      expect(problem.errors).toEqual([expect.objectContaining({ in: "query", field })]);
      expect(problem.detail).toContain("actor");
    }
    expect((await get("/v1/audit?actor=u1&limit=2")).status).toBe(200);
    // A route that takes no query ignores one, as before.
    expect((await get("/v1/audit/verify?x=1")).status).toBe(200);
  });
});

describe("cursor pagination and tenants", () => {
  test("should return every event exactly once while new events arrive between pages", async () => {
    const want = expected((row) => row.actor_id === "u1");
    const got = await pages("actor=u1", 2, () => {
      ctx.clock.advance(10);
      record("acme", ["u1", "auth.login", "t9", "success"]);
      record("globex", ["u1", "auth.login", "t9", "success"]);
    });
    expect(got.map((event) => event.seq)).toEqual(want);
    // Unfiltered, each page's own audit.read lands between pages too.
    const everything = expected(() => true);
    const seqs = (await pages("", 5)).map((event) => event.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual(everything);
  });

  test("another tenant's events should never appear", async () => {
    const acme = await pages("", 50);
    expect(acme.length).toBeGreaterThan(SPECS.length);
    expect(acme.every((event) => event.tenant_id === "acme")).toBe(true);
    expect(await pages("target=globex-only")).toEqual([]);
    const globex = await pages("", 50, undefined, globexAdmin);
    expect(globex.map((event) => event.seq)).toEqual(
      expected(() => true, "globex").filter((s) => s <= (globex[0]?.seq ?? 0)),
    );
    expect(globex.some((event) => event.target?.id === "globex-only")).toBe(true);
  });
});

describe("reads and exports are audited", () => {
  test("GET /v1/audit should record audit.read with its filters and request id", async () => {
    expect((await get("/v1/audit?actor=u2&outcome=failure&limit=3", admin, "audit-read-1")).status).toBe(200);
    const row = ctx.auditEvents("audit.read").find((event) => event.request_id === "audit-read-1");
    expect(row).toMatchObject({ tenant_id: "acme", actor_type: "user", actor_id: admin.userId, outcome: "success" });
    expect(JSON.parse(row?.params ?? "{}")).toMatchObject({ actor: "u2", outcome: "failure", limit: 3 });
  });

  test("GET /v1/audit/export should record audit.export with its filters and request id", async () => {
    const res = await get("/v1/audit/export?action=token.", admin, "audit-export-1");
    await res.text();
    const row = ctx.auditEvents("audit.export").find((event) => event.request_id === "audit-export-1");
    expect(row).toMatchObject({ tenant_id: "acme", actor_id: admin.userId, outcome: "success" });
    expect(JSON.parse(row?.params ?? "{}")).toEqual({ action: "token." });
  });
});

describe("GET /v1/audit/export", () => {
  const ndjson = async (query: string) => {
    const res = await get(`/v1/audit/export?${query}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/x-ndjson");
    const text = await res.text();
    expect(text.endsWith("\n")).toBe(true);
    return text
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as PublicEvent);
  };

  test("should stream one JSON event per line, with the list's filters, newest first", async () => {
    const want = expected((row) => row.actor_id === "u2" && row.action.startsWith("auth."));
    const exported = await ndjson("actor=u2&action=auth.");
    expect(exported.map((event) => event.seq)).toEqual(want);
    expect(exported).toEqual(await pages("actor=u2&action=auth.", 200));
  });

  test("unfiltered, should hold this tenant's events only, all of them", async () => {
    const want = expected(() => true);
    const exported = await ndjson("");
    expect(exported.length).toBeGreaterThanOrEqual(want.length);
    expect(exported.every((event) => event.tenant_id === "acme")).toBe(true);
    expect(exported.map((event) => event.seq).filter((seq) => seq <= (want[0] ?? 0))).toEqual(want);
  });
});

describe("export memory", () => {
  const ROWS = 200_000;
  let server: TestServer;
  afterAll(() => server?.stop());

  const rssBytes = (pid: number) => {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return Number(kb) * 1024;
  };

  test(`should stream ${ROWS} events (> 50 MB) with the server's RSS growing < 60 MB`, async () => {
    server = await startServer();
    const created = await createAdminWithCli(server.dataDir, { tenant: "big", email: "admin@big.test" });
    const auth = { authorization: `Bearer ${await passwordLogin(server, created)}` };

    const sqlite = new Database(join(server.dataDir, DATABASE_FILE));
    sqlite.run("PRAGMA busy_timeout = 5000");
    const insert = sqlite.query(
      `INSERT INTO audit_events (id, ts, tenant_id, actor_type, actor_id, action, target_type, target_id, outcome,
           reason, ip, user_agent, request_id, params_hash, params, prev_hash, hash)
         VALUES (?, ?, 'big', 'user', 'bulk-actor', 'token.revoke', 'token', ?, 'success', NULL, '127.0.0.1',
           'bulk-agent/1.0', ?, ?, ?, ?, ?)`,
    );
    const hash = "f".repeat(64);
    const params = JSON.stringify({ jti: "x".repeat(180) });
    const now = Date.now();
    sqlite.transaction(() => {
      for (let i = 0; i < ROWS; i++) insert.run(`bulk-${i}`, now + i, `jti-${i}`, `req-${i}`, hash, params, hash, hash);
    })();
    sqlite.close();

    // Warm up: JIT, first-use allocations and SQLite's page cache (bounded by its cache_size,
    // 64 MiB) are not the export's. A first full export fills the cache as the second will read it.
    await (await server.fetch("/v1/audit/export", { headers: auth })).arrayBuffer();
    const pid = server.proc.pid;
    const baseline = rssBytes(pid);
    let peak = baseline;
    let bytes = 0;
    let lines = 0;
    let sinceSample = 0;
    const res = await server.fetch("/v1/audit/export", { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/x-ndjson");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      sinceSample += value.byteLength;
      for (const byte of value) if (byte === 10) lines++;
      if (sinceSample > 1 << 20) {
        sinceSample = 0;
        peak = Math.max(peak, rssBytes(pid));
      }
    }
    peak = Math.max(peak, rssBytes(pid));
    expect(lines).toBeGreaterThanOrEqual(ROWS);
    expect(bytes).toBeGreaterThan(50 * 1024 * 1024);
    expect(peak - baseline).toBeLessThan(60 * 1024 * 1024);
  }, 180_000);
});
