import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DATABASE_FILE, openDatabase } from "../../../db/client";
import { applyMigrations } from "../../../db/migrate";
import { migrations } from "../../../db/migrations";
import { ManualClock } from "../../lib/clock";
import { WriteBatcher } from "../../lib/write-batcher";
import type { SecurityEvent } from "./hook";
import { firstSeqAt, queryEvents } from "./query";
import { type AuditRow, AuditTrail } from "./trail";
import { verifyChain } from "./verify";

const KEY = new Uint8Array(32).fill(9);
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "warden-audit-storage-"));
  dirs.push(dir);
  return dir;
};

const event = (i: number, tenantId = "t1"): SecurityEvent => ({
  action: "revocation.create",
  outcome: "success",
  tenantId,
  actor: { type: "user", id: "u1" },
  target: { type: "token", id: `j-${i}` },
  params: { jti: `j-${i}` },
});

const rows = (sqlite: Database) => sqlite.query<AuditRow, []>("SELECT * FROM audit_events ORDER BY seq").all();

describe("the audit trail's storage", () => {
  test("upgrading a database of migration 0004 should keep every event, the chain and the append-only triggers", () => {
    const dir = tempDir();
    const before = migrations.findIndex((m) => m.tag.startsWith("0005_"));
    expect(before).toBeGreaterThan(0);
    const old = new Database(join(dir, DATABASE_FILE), { create: true, strict: true });
    applyMigrations(old, migrations.slice(0, before));
    // This build's trail also moves the head record, which 0004 lacks: a stand-in, dropped after.
    old.run("CREATE TABLE audit_head (id integer PRIMARY KEY, seq integer, hash text, ts integer, mac text)");
    const clock = new ManualClock();
    const oldTrail = new AuditTrail({ $client: old } as never, KEY, clock);
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      oldTrail.record(event(i, i % 2 ? "t1" : "t2"));
    }
    old.run("DROP TABLE audit_head");
    const written = rows(old);
    old.close();

    const db = openDatabase(dir);
    const sqlite = db.$client;
    expect(rows(sqlite)).toEqual(written);
    // Until the server first starts on it, the upgraded trail has no head record, and says so.
    expect(verifyChain(sqlite, KEY).brokenAt?.reason).toContain("head record is missing");
    new AuditTrail(db, KEY, clock).recordHeadIfMissing();
    expect(verifyChain(sqlite, KEY)).toMatchObject({ ok: true, checked: 5 });
    expect(() => sqlite.run("UPDATE audit_events SET outcome = 'failure' WHERE seq = 2")).toThrow(/append-only/);
    expect(() => sqlite.run("DELETE FROM audit_events WHERE seq = 5")).toThrow(/append-only/);
    const indexes = sqlite
      .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events'")
      .all()
      .map((row) => row.name)
      .sort();
    expect(indexes).toEqual([
      "audit_events_tenant_action",
      "audit_events_tenant_actor",
      "audit_events_tenant_seq",
      "audit_events_tenant_target",
    ]);
    // The chain goes on where it stopped.
    new AuditTrail(db, KEY, clock).record(event(5));
    expect(verifyChain(sqlite, KEY)).toMatchObject({ ok: true, checked: 6, head: { seq: 6 } });
    sqlite.close();
  });

  test("ts should never decrease along seq, even when the clock steps back", () => {
    const db = openDatabase(tempDir());
    const clock = new ManualClock();
    const trail = new AuditTrail(db, KEY, clock);
    const start = clock.now();
    const steps = [1000, 1000, -1500, 200, 2000, -5000, 6000];
    for (const [i, step] of steps.entries()) {
      clock.advance(step);
      trail.record(event(i));
    }
    expect(rows(db.$client).map((row) => row.ts - start)).toEqual([1000, 2000, 2000, 2000, 2700, 2700, 3700]);
    expect(verifyChain(db.$client, KEY)).toMatchObject({ ok: true, checked: steps.length });
    db.$client.close();
  });

  test("a time range should find exactly the events inside it, as a seq range", () => {
    const db = openDatabase(tempDir());
    const sqlite = db.$client;
    const clock = new ManualClock();
    const trail = new AuditTrail(db, KEY, clock);
    const t0 = clock.now();
    // Bursts in the same millisecond and gaps between them; two tenants interleaved.
    for (let i = 0; i < 60; i++) {
      if (i % 3 === 0) clock.advance(1000);
      trail.record(event(i, i % 4 === 0 ? "t2" : "t1"));
    }
    const all = rows(sqlite);
    expect(firstSeqAt(sqlite, 0)).toBe(1);
    expect(firstSeqAt(sqlite, t0 + 1000)).toBe(1);
    expect(firstSeqAt(sqlite, t0 + 1001)).toBe(4);
    expect(firstSeqAt(sqlite, t0 + 5000)).toBe(13);
    expect(firstSeqAt(sqlite, t0 + 20_000)).toBe(58);
    expect(firstSeqAt(sqlite, t0 + 20_001)).toBe(61);
    for (const [from, to] of [
      [undefined, t0 + 1000],
      [t0 + 3000, t0 + 7000],
      [t0 + 3500, t0 + 3600],
      [t0 + 19_000, undefined],
      [t0 + 30_000, undefined],
    ] as const) {
      const want = all
        .filter((row) => row.tenant_id === "t1" && row.ts >= (from ?? 0) && row.ts < (to ?? Number.MAX_SAFE_INTEGER))
        .reverse();
      const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
      const got = queryEvents(sqlite, "t1", { from: iso(from), to: iso(to) }, Number.MAX_SAFE_INTEGER, 200).rows;
      expect(got).toEqual(want);
    }
    sqlite.close();
  });

  test("a time range on an empty trail should find nothing", () => {
    const db = openDatabase(tempDir());
    const sqlite = db.$client;
    expect(firstSeqAt(sqlite, Date.now())).toBe(1);
    expect(queryEvents(sqlite, "t1", { from: new Date(0).toISOString() }, Number.MAX_SAFE_INTEGER, 10).rows).toEqual(
      [],
    );
    sqlite.close();
  });
});

describe("the head record under group commit", () => {
  /** A fresh trail whose events are written through a group commit, as the service's are. */
  const batchedTrail = () => {
    const db = openDatabase(tempDir());
    const trail = new AuditTrail(db, KEY, new ManualClock());
    const batcher = new WriteBatcher(db.$client);
    trail.batchedBy(batcher);
    return { sqlite: db.$client, trail, batcher };
  };

  test("is written once a batch, as its last row, even when a write rolled back to its savepoint", async () => {
    const { sqlite, trail, batcher } = batchedTrail();
    const heads: number[] = [];
    const watch = sqlite.query<{ seq: number }, []>("SELECT seq FROM audit_head WHERE id = 1");
    const outcomes = await Promise.allSettled(
      [0, 1, 2].map((i) =>
        batcher.run(() => {
          trail.append(undefined, event(i));
          heads.push(watch.get()?.seq ?? 0);
          if (i === 1) throw new Error("this write fails after its event");
        }),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    // Not moved while the batch ran: written as it committed, naming the last row that stayed.
    expect(heads.every((seq) => seq === 0)).toBe(true);
    expect(rows(sqlite).map((row) => row.seq)).toEqual([1, 2]);
    expect(watch.get()?.seq).toBe(2);
    expect(verifyChain(sqlite, KEY)).toMatchObject({ ok: true, checked: 2 });
    // Outside a batch, an event moves the head at once.
    trail.record(event(3));
    expect(watch.get()?.seq).toBe(3);
    expect(verifyChain(sqlite, KEY)).toMatchObject({ ok: true, checked: 3 });
    sqlite.close();
  });

  test("never moves back: removed newest rows stay named, whatever batches roll back after", async () => {
    const { sqlite, trail, batcher } = batchedTrail();
    for (let i = 0; i < 3; i++) await batcher.run(() => trail.append(undefined, event(i)));
    sqlite.run("DROP TRIGGER audit_events_no_delete");
    sqlite.run("DELETE FROM audit_events WHERE seq = 3");
    // An audited write that rolls back, next to one that writes no event: the head stays at 3.
    const outcomes = await Promise.allSettled([
      batcher.run(() => {
        trail.append(undefined, event(10));
        throw new Error("rolled back");
      }),
      batcher.run(() => sqlite.run("SELECT 1")),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "fulfilled"]);
    expect(verifyChain(sqlite, KEY).brokenAt?.reason).toContain("events after seq 2 are missing");
    // And the next event chains onto the head, not onto the last row left.
    await batcher.run(() => trail.append(undefined, event(11)));
    expect(rows(sqlite).map((row) => row.seq)).toEqual([1, 2, 4]);
    expect(verifyChain(sqlite, KEY)).toMatchObject({ ok: false, brokenAt: { seq: 4 } });
    sqlite.close();
  });
});
