import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTestContext, type TestContext } from "../../testing/app";
import { runCli } from "../../testing/cli";
import { seedAndLogin } from "../../testing/identity";
import { archiveOlderThan } from "./retention";
import { verifyChain } from "./verify";

const DAY = 86_400_000;

let ctx: TestContext;
beforeEach(async () => {
  ctx = await createTestContext();
});
afterEach(() => ctx.close());

const sqlite = () => ctx.deps.db.$client;
const verify = () => verifyChain(sqlite(), ctx.deps.security.auditKey);

function record(events: number): void {
  for (let i = 0; i < events; i++) {
    ctx.deps.security.audit.record({
      action: "user.create",
      outcome: "success",
      tenantId: "acme",
      actor: { type: "system", id: "test" },
      target: { type: "user", id: `u-${i}` },
      params: { email: `u-${i}@acme.test`, role: "developer" },
    });
  }
}

function dropTriggers(): void {
  sqlite().run("DROP TRIGGER audit_events_no_update");
  sqlite().run("DROP TRIGGER audit_events_no_delete");
}

const hashAt = (seq: number) =>
  sqlite().query<{ hash: string }, [number]>("SELECT hash FROM audit_events WHERE seq = ?").get(seq)?.hash;

function forgeCheckpoint(seq: number, mac: string | null): void {
  sqlite().run(
    "INSERT INTO audit_checkpoints (seq, hash, archived_at, archive_file, events, mac) VALUES (?, ?, 0, ?, ?, ?)",
    [seq, hashAt(seq) ?? "", `audit-archive/audit-1-${seq}.ndjson`, seq, mac],
  );
}

function archiveAll(): number {
  ctx.clock.advance(DAY);
  const result = archiveOlderThan(
    ctx.deps.db,
    ctx.deps.config.dataDir,
    ctx.clock.now(),
    ctx.clock,
    ctx.deps.security.auditKey,
  );
  return result.throughSeq ?? 0;
}

describe("archive checkpoints", () => {
  test("a checkpoint made up over events still stored does not hide an edit below it", () => {
    record(10);
    dropTriggers();
    sqlite().run(`UPDATE audit_events SET params = '{"email":"someone-else@acme.test","role":"viewer"}' WHERE seq = 8`);
    forgeCheckpoint(8, "0".repeat(64));
    expect(verify()).toMatchObject({
      ok: false,
      brokenAt: { seq: 8, reason: expect.stringContaining("does not verify") },
    });

    sqlite().run("DELETE FROM audit_checkpoints");
    forgeCheckpoint(8, null);
    expect(verify()).toMatchObject({
      ok: false,
      brokenAt: { seq: 8, reason: expect.stringContaining("carries no MAC") },
    });

    // Without it, the edit is where the walk stops.
    sqlite().run("DELETE FROM audit_checkpoints");
    expect(verify()).toMatchObject({ ok: false, brokenAt: { seq: 8 } });
  });

  test("the oldest events removed with no checkpoint are named", () => {
    record(6);
    dropTriggers();
    sqlite().run("DELETE FROM audit_events WHERE seq <= 3");
    expect(verify()).toMatchObject({
      ok: false,
      brokenAt: { seq: 1, reason: "the events before seq 4 are missing, and no archive checkpoint accounts for them" },
    });
  });

  test("the first event after a checkpoint removed is named", () => {
    record(6);
    const through = archiveAll();
    record(3);
    dropTriggers();
    sqlite().run("DELETE FROM audit_events WHERE seq = ?", [through + 1]);
    expect(verify()).toMatchObject({
      ok: false,
      brokenAt: { seq: through + 1, reason: expect.stringContaining(`after archived seq ${through}`) },
    });
  });

  test("the whole trail removed, head record and all, is named", async () => {
    // A user, as every database in use has: its creation is an audited event.
    await seedAndLogin(ctx, "acme", "viewer");
    dropTriggers();
    sqlite().run("DELETE FROM audit_events");
    sqlite().run("DELETE FROM audit_head");
    expect(verify()).toMatchObject({ ok: false, brokenAt: { seq: 1, reason: expect.stringContaining("was emptied") } });
  });

  test("the background verifier stops at a made-up checkpoint too", async () => {
    record(4);
    expect((await ctx.deps.auditVerifier.pass(undefined, true)).ok).toBe(true);
    dropTriggers();
    forgeCheckpoint(2, "f".repeat(64));
    expect(await ctx.deps.auditVerifier.pass(undefined, true)).toMatchObject({ ok: false, brokenAt: { seq: 2 } });
  });

  test("a chain archived whole still reports its head: the checkpoint", () => {
    record(3);
    const through = archiveAll();
    expect(verify()).toMatchObject({
      ok: true,
      checked: 0,
      from: through,
      head: { seq: through, hash: expect.any(String) },
    });
  });

  test("audit sign-checkpoints signs a checkpoint an earlier version left unsigned, and the trail says who did", async () => {
    record(4);
    const through = archiveAll();
    record(2);
    // As an earlier version's retention wrote it.
    sqlite().run("UPDATE audit_checkpoints SET mac = NULL");
    expect(verify()).toMatchObject({
      ok: false,
      brokenAt: { seq: through, reason: expect.stringContaining("audit sign-checkpoints") },
    });

    const signed = await runCli(ctx.deps.config.dataDir, ["audit", "sign-checkpoints"]);
    expect(signed.stderr).toBe("");
    expect(signed.stdout).toContain(`signed 1 archive checkpoint(s) at seq ${through}`);
    expect(verify()).toMatchObject({ ok: true, from: through });
    const [event] = ctx.auditEvents("audit.sign_checkpoints");
    expect(event).toMatchObject({ actor_type: "system", actor_id: "cli", tenant_id: null });
    expect(JSON.parse(String(event?.params))).toEqual({ seqs: [through] });

    const again = await runCli(ctx.deps.config.dataDir, ["audit", "sign-checkpoints"]);
    expect(again.stdout).toContain("no unsigned archive checkpoints");
  });

  test("audit sign-checkpoints refuses a checkpoint its archive does not bear out, and signs nothing", async () => {
    record(6);
    const archivedRows = ctx.auditEvents().filter((row) => row.seq <= 3);
    dropTriggers();
    // Made up: the oldest events removed, and a checkpoint claimed for them with no archive.
    sqlite().run("DELETE FROM audit_events WHERE seq <= 3");
    forgeCheckpoint(3, null);
    const missing = await runCli(ctx.deps.config.dataDir, ["audit", "sign-checkpoints"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("cannot be signed: its archive");
    expect(missing.stderr).toContain("is missing");

    // An archive that is there, with an event edited in it.
    const file = join(ctx.deps.config.dataDir, "audit-archive/audit-1-3.ndjson");
    mkdirSync(join(ctx.deps.config.dataDir, "audit-archive"), { recursive: true });
    const lines = archivedRows.map((row) => JSON.stringify(row));
    lines[1] = JSON.stringify({ ...archivedRows[1], reason: "edited" });
    writeFileSync(file, `${lines.join("\n")}\n`);
    const edited = await runCli(ctx.deps.config.dataDir, ["audit", "sign-checkpoints"]);
    expect(edited.code).toBe(1);
    expect(edited.stderr).toContain("seq 2: the event's hash does not match its contents");
    expect(sqlite().query("SELECT mac FROM audit_checkpoints").get()).toEqual({ mac: null });
    expect(ctx.auditEvents("audit.sign_checkpoints")).toEqual([]);
  });
});
