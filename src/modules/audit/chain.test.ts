import type { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { decodeJwt } from "jose";
import { createTestContext, type TestContext } from "../../testing/app";
import { runCli } from "../../testing/cli";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";
import { type AuditRow, canonicalEvent, GENESIS_HASH } from "./trail";
import { verifyChain } from "./verify";

interface VerifyBody {
  ok: boolean;
  checked: number;
  from: number;
  broken_at?: number;
  reason?: string;
  head?: { seq: number; hash: string };
}

const sqliteOf = (ctx: TestContext): Database => ctx.deps.db.$client;
const rowCount = (ctx: TestContext) => ctx.auditEvents().length;
const rowAt = (ctx: TestContext, seq: number) =>
  sqliteOf(ctx).query<AuditRow, [number]>("SELECT * FROM audit_events WHERE seq = ?").get(seq);

async function verify(ctx: TestContext, admin: LoggedIn): Promise<VerifyBody> {
  const res = await ctx.req("GET", "/v1/audit/verify", { headers: admin.auth });
  expect(res.status).toBe(200);
  return (await res.json()) as VerifyBody;
}

/** A fresh context with an admin and a short chain of real events (a login, then revocations). */
async function smallChain(events = 6): Promise<{ ctx: TestContext; admin: LoggedIn }> {
  const ctx = await createTestContext();
  const admin = await seedAndLogin(ctx, "acme", "admin");
  while (rowCount(ctx) < events) {
    ctx.clock.advance(1000);
    const res = await ctx.req("POST", "/v1/admin/revocations", {
      headers: admin.auth,
      body: { jti: `j-${rowCount(ctx)}` },
    });
    expect(res.status).toBe(201);
  }
  return { ctx, admin };
}

/** What an attacker with file access does first: take the guards away behind the service's back. */
function dropTriggers(ctx: TestContext): void {
  sqliteOf(ctx).run("DROP TRIGGER audit_events_no_update");
  sqliteOf(ctx).run("DROP TRIGGER audit_events_no_delete");
}

const COLUMNS =
  "seq, id, ts, tenant_id, actor_type, actor_id, action, target_type, target_id, outcome, reason, ip, user_agent, request_id, params_hash, params, prev_hash, hash";

function insertRow(sqlite: Database, row: AuditRow, verb = "INSERT"): void {
  const names = COLUMNS.split(", ") as (keyof AuditRow)[];
  sqlite
    .query(`${verb} INTO audit_events (${COLUMNS}) VALUES (${names.map(() => "?").join(", ")})`)
    .run(...(names.map((name) => row[name]) as never[]));
}

describe("a chain written by real actions", () => {
  let ctx: TestContext;
  let admin: LoggedIn;
  beforeAll(async () => {
    ctx = await createTestContext();
    admin = await seedAndLogin(ctx, "acme", "admin");
    const viewer = await seedAndLogin(ctx, "acme", "viewer");
    const as = (method: string, path: string, body?: unknown) => ctx.req(method, path, { headers: admin.auth, body });
    await ctx.req("POST", "/v1/auth/token", {
      body: { grant_type: "password", tenant: "acme", username: admin.email, password: "not the password" },
    });
    const created = await (await as("POST", "/v1/admin/users", { email: "new@acme.test", role: "viewer" })).json();
    await as("POST", `/v1/admin/users/${created.user.id}/disable`);
    await as("POST", `/v1/admin/users/${created.user.id}/enable`);
    const { api_key } = await (await as("POST", "/v1/admin/api-keys", { name: "ci" })).json();
    const issued = await (
      await ctx.req("POST", "/v1/auth/token", { body: { grant_type: "client_credentials", client_secret: api_key } })
    ).json();
    await ctx.req("POST", "/v1/auth/token", {
      body: { grant_type: "refresh_token", refresh_token: issued.refresh_token },
    });
    await as("POST", "/v1/admin/revocations", { jti: String(decodeJwt(issued.access_token).jti) });
    await ctx.req("POST", "/v1/auth/logout", { headers: viewer.auth });
  });
  afterAll(() => ctx.close());

  test("GET /v1/audit/verify should check every stored event and report the head", async () => {
    const rows = ctx.auditEvents();
    expect(new Set(rows.map((row) => row.action))).toEqual(
      new Set(["auth.login", "auth.login_failed", "user.create", "user.disable", "user.enable", "apikey.create"]).union(
        new Set(["token.issue", "token.refresh", "revocation.create", "auth.logout"]),
      ),
    );
    const report = await verify(ctx, admin);
    expect(report).toMatchObject({ ok: true, checked: rows.length, from: 0 });
    expect(report.broken_at).toBeUndefined();
    expect(report.head).toEqual({ seq: rows.at(-1)?.seq ?? -1, hash: rows.at(-1)?.hash ?? "" });
    // The verification is itself audited, and the chain still holds with it.
    expect(ctx.auditEvents("audit.verify")).toHaveLength(1);
    expect(await verify(ctx, admin)).toMatchObject({ ok: true, checked: rows.length + 1 });
  });

  test("each link should be HMAC-SHA256(audit key, prev_hash ‖ canonical event), seqs without gaps", () => {
    let prev = GENESIS_HASH;
    ctx.auditEvents().forEach((row, index) => {
      expect(row.seq).toBe(index + 1);
      expect(row.prev_hash).toBe(prev);
      const expected = createHmac("sha256", ctx.deps.security.auditKey)
        .update(row.prev_hash + canonicalEvent(row))
        .digest("hex");
      expect(row.hash).toBe(expected);
      prev = row.hash;
    });
  });

  test("UPDATE and DELETE should be refused by the triggers, leaving the row as it was", () => {
    const before = rowAt(ctx, 2);
    const sqlite = sqliteOf(ctx);
    expect(() => sqlite.run("UPDATE audit_events SET outcome = 'denied' WHERE seq = 2")).toThrow(/append-only/);
    expect(() => sqlite.run("UPDATE audit_events SET params = '{}'")).toThrow(/append-only/);
    expect(() => sqlite.run("DELETE FROM audit_events WHERE seq = 2")).toThrow(/append-only/);
    expect(() => sqlite.run("DELETE FROM audit_events")).toThrow(/append-only/);
    expect(rowAt(ctx, 2)).toEqual(before as AuditRow);
  });

  test("an overwrite through INSERT OR REPLACE should be refused too (it deletes the old row)", () => {
    const before = rowAt(ctx, 2) as AuditRow;
    const forged = { ...before, id: "01FORGEDFORGEDFORGEDFORGED", outcome: "failure" };
    expect(() => insertRow(sqliteOf(ctx), forged, "INSERT OR REPLACE")).toThrow(/append-only/);
    expect(rowAt(ctx, 2)).toEqual(before);
  });
});

describe("tampering behind the service's back", () => {
  const K = 3;
  let ctx: TestContext;
  let admin: LoggedIn;
  beforeAll(async () => {
    ({ ctx, admin } = await smallChain());
    dropTriggers(ctx);
  });
  afterAll(() => ctx.close());

  test.each([
    ["outcome", "'failure'"],
    ["params", `'{"jti":"someone-else"}'`],
    ["actor_id", "'another-admin'"],
    ["action", "'audit.read'"],
    ["ts", "ts + 1"],
    ["reason", "'nothing to see'"],
    ["request_id", "'forged-request'"],
    // Two other hex digits in front: 'ab' alone left a hash that already began with it unchanged (1 in 256).
    ["hash", "(CASE WHEN hash LIKE 'ab%' THEN 'cd' ELSE 'ab' END) || substr(hash, 3)"],
    ["prev_hash", "(CASE WHEN prev_hash LIKE 'ab%' THEN 'cd' ELSE 'ab' END) || substr(prev_hash, 3)"],
  ])("an edit of %s in row k should be named at seq k", async (column, value) => {
    const original = rowAt(ctx, K) as AuditRow;
    sqliteOf(ctx).run(`UPDATE audit_events SET ${column} = ${value} WHERE seq = ${K}`);
    expect(rowAt(ctx, K)).not.toEqual(original);
    const report = await verify(ctx, admin);
    expect(report).toMatchObject({ ok: false, broken_at: K, checked: K - 1 });
    expect(report.reason).toBeString();
    // Put it back: the chain holds again, so the break was that edit and nothing else.
    sqliteOf(ctx).run("DELETE FROM audit_events WHERE seq = ?", [K]);
    insertRow(sqliteOf(ctx), original);
    expect(await verify(ctx, admin)).toMatchObject({ ok: true });
  });
});

describe("removal and reordering", () => {
  const contexts: TestContext[] = [];
  afterAll(async () => {
    for (const ctx of contexts) await ctx.close();
  });
  const tampered = async (tamper: (sqlite: Database) => void) => {
    const world = await smallChain();
    contexts.push(world.ctx);
    dropTriggers(world.ctx);
    tamper(sqliteOf(world.ctx));
    return verify(world.ctx, world.admin);
  };

  test("deleting row k should be named at seq k + 1 (the event after the gap)", async () => {
    const report = await tampered((sqlite) => sqlite.run("DELETE FROM audit_events WHERE seq = 3"));
    expect(report).toMatchObject({ ok: false, broken_at: 4, checked: 2 });
    expect(report.reason).toContain("missing");
  });

  test("deleting row k and renumbering the rest should be named at seq k", async () => {
    const report = await tampered((sqlite) => {
      sqlite.run("DELETE FROM audit_events WHERE seq = 3");
      sqlite.run("UPDATE audit_events SET seq = -seq WHERE seq > 3");
      sqlite.run("UPDATE audit_events SET seq = -seq - 1 WHERE seq < 0");
    });
    expect(report).toMatchObject({ ok: false, broken_at: 3, checked: 2 });
  });

  test("deleting the newest events is named, and events appended after do not cover the gap", async () => {
    const world = await smallChain();
    contexts.push(world.ctx);
    dropTriggers(world.ctx);
    const sqlite = sqliteOf(world.ctx);
    const last = rowCount(world.ctx);
    sqlite.run("DELETE FROM audit_events WHERE seq >= ?", [last - 1]);
    const cli = verifyChain(sqlite, world.ctx.deps.security.auditKey);
    expect(cli).toMatchObject({ ok: false, brokenAt: { seq: last - 1 } });
    expect(cli.brokenAt?.reason).toContain(`events after seq ${last - 2} are missing`);
    // Later events chain onto the head, not onto the last row left: the gap stays visible.
    const res = await world.ctx.req("POST", "/v1/admin/revocations", {
      headers: world.admin.auth,
      body: { jti: "after" },
    });
    expect(res.status).toBe(201);
    expect(rowAt(world.ctx, last + 1)?.action).toBe("revocation.create");
    const report = await verify(world.ctx, world.admin);
    expect(report).toMatchObject({ ok: false, broken_at: last + 1, checked: last - 2 });
    expect(report.reason).toContain("missing");
  });

  test("a head record moved back by hand, or removed, is named", async () => {
    const moved = await tampered((sqlite) => {
      const previous = sqlite
        .query<AuditRow, []>("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1 OFFSET 1")
        .get();
      sqlite.run("DELETE FROM audit_events WHERE seq > ?", [previous?.seq ?? 0]);
      sqlite.run("UPDATE audit_head SET seq = ?, hash = ?", [previous?.seq ?? 0, previous?.hash ?? ""]);
    });
    expect(moved.ok).toBe(false);
    expect(moved.reason).toContain("head record does not verify");
    const world = await smallChain();
    contexts.push(world.ctx);
    sqliteOf(world.ctx).run("DELETE FROM audit_head");
    expect(verifyChain(sqliteOf(world.ctx), world.ctx.deps.security.auditKey).brokenAt?.reason).toContain(
      "head record is missing",
    );
  });

  const swap = (sqlite: Database, a: number, b: number, keepChainColumns: boolean) => {
    const [first, second] = [a, b].map((seq) =>
      sqlite.query<AuditRow, [number]>("SELECT * FROM audit_events WHERE seq = ?").get(seq),
    ) as [AuditRow, AuditRow];
    sqlite.run("DELETE FROM audit_events WHERE seq IN (?, ?)", [a, b]);
    const chain = (row: AuditRow) => (keepChainColumns ? { prev_hash: row.prev_hash, hash: row.hash } : {});
    insertRow(sqlite, { ...second, seq: a, ...chain(first) });
    insertRow(sqlite, { ...first, seq: b, ...chain(second) });
  };

  test.each([
    ["adjacent rows, whole rows", 3, 4, false],
    ["distant rows, whole rows", 2, 5, false],
    ["adjacent rows, chain columns left in place", 3, 4, true],
  ])("swapping %s should be named at the lower seq", async (_name, a, b, keep) => {
    const report = await tampered((sqlite) => swap(sqlite, a, b, keep));
    expect(report).toMatchObject({ ok: false, broken_at: a, checked: a - 1 });
  });
});

describe("warden audit verify (CLI)", () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ({ ctx } = await smallChain(5));
  });
  afterAll(() => ctx.close());

  test("should exit 0 on an intact chain, then 1 naming the first broken seq", async () => {
    const dataDir = ctx.deps.config.dataDir;
    const intact = await runCli(dataDir, ["audit", "verify"]);
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain(`intact: ${rowCount(ctx)} events`);
    const head = sqliteOf(ctx)
      .query<{ seq: number; hash: string }, []>("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
      .get();
    expect(intact.stdout).toContain(`head seq ${head?.seq}, hash ${head?.hash}`);

    dropTriggers(ctx);
    sqliteOf(ctx).run("UPDATE audit_events SET outcome = 'failure' WHERE seq = 2");
    const broken = await runCli(dataDir, ["audit", "verify"]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain("BROKEN at seq 2");
    expect(broken.stderr).toContain("1 events verified before it");
  });

  test("should name the key, not a break, when run with another AUDIT_KEY than the trail's", async () => {
    const { ctx: other } = await smallChain(4);
    try {
      const wrongKey = await runCli(other.deps.config.dataDir, ["audit", "verify"], {
        AUDIT_KEY: "another-audit-key-of-at-least-32-bytes",
      });
      expect(wrongKey.code).toBe(1);
      expect(wrongKey.stderr).toContain("cannot be verified with this audit key");
      expect(wrongKey.stderr).not.toContain("BROKEN");
      // The first event and the head record altered look like another key from the first link,
      // but the last event still verifies: that is a break, and said so.
      dropTriggers(other);
      sqliteOf(other).run("UPDATE audit_events SET outcome = 'failure' WHERE seq = 1");
      sqliteOf(other).run("UPDATE audit_head SET mac = 'forged' WHERE id = 1");
      const tampered = await runCli(other.deps.config.dataDir, ["audit", "verify"]);
      expect(tampered.code).toBe(1);
      expect(tampered.stderr).toContain("BROKEN at seq 1");
      expect(tampered.stderr).toContain("the head record does not verify either");
    } finally {
      await other.close();
    }
  });

  test("should refuse a DATA_DIR without a database, creating nothing there", async () => {
    const typo = `${ctx.deps.config.dataDir}-typo`;
    const result = await runCli(typo, ["audit", "verify"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`warden: no database at ${typo}/warden.db`);
    expect(existsSync(typo)).toBe(false);
  });
});

describe("canonical form", () => {
  test("params holding $ sequences are written as they are, not read as replacement patterns", () => {
    const row = {
      seq: 1,
      id: "x",
      ts: 0,
      tenant_id: "acme",
      actor_type: "user",
      actor_id: "u",
      action: "user.create",
      target_type: "user",
      target_id: "t",
      outcome: "success",
      reason: null,
      ip: null,
      user_agent: null,
      request_id: null,
      params_hash: "h",
      params: "{}",
    };
    const params = { email: "a$&b$'c$`d@example.test" };
    expect(canonicalEvent(row, params)).toContain(`"params":{"email":"a$&b$'c$\`d@example.test"}`);
  });
});
