import { afterEach, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";
import { waitFor } from "../../testing/ports";
import { archiveOlderThan } from "./retention";
import { ChainVerifier, startChainVerification } from "./verifier";

const HOUR = 3600_000;
let ctx: TestContext;
afterEach(() => ctx?.close());

async function withEvents(): Promise<{ admin: LoggedIn; verifier: ChainVerifier }> {
  ctx = await createTestContext();
  const admin = await seedAndLogin(ctx, "acme", "admin");
  await appendEvents(admin, 7);
  // Chunks of 3 links, so a pass over ten events takes several steps.
  const verifier = new ChainVerifier(ctx.deps.db.$client, ctx.deps.security.auditKey, ctx.deps.metrics, ctx.clock, {
    intervalMs: 1000,
    fullEveryMs: 24 * HOUR,
    chunk: 3,
  });
  return { admin, verifier };
}

async function appendEvents(admin: LoggedIn, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    ctx.clock.advance(1000);
    const res = await ctx.req("POST", "/v1/admin/revocations", {
      headers: admin.auth,
      body: { jti: crypto.randomUUID() },
    });
    expect(res.status).toBe(201);
  }
}

const gauges = async () => ({
  verified: (await ctx.deps.metrics.auditChainVerified.get()).values[0]?.value,
  at: (await ctx.deps.metrics.auditChainLastVerify.get()).values[0]?.value,
});

const lastSeq = () => ctx.auditEvents().at(-1)?.seq ?? 0;

describe("audit chain verifier", () => {
  test("should verify the whole chain in chunks, then only what was appended since", async () => {
    const { admin, verifier } = await withEvents();
    const total = ctx.auditEvents().length;
    const first = await verifier.pass();
    expect(first).toMatchObject({ ok: true, checked: total, from: 0, head: { seq: lastSeq() } });
    expect(await gauges()).toEqual({ verified: 1, at: ctx.clock.now() / 1000 });

    const before = lastSeq();
    await appendEvents(admin, 2);
    const next = await verifier.pass();
    expect(next).toMatchObject({ ok: true, checked: 2, from: before, head: { seq: lastSeq() } });
  });

  test("should find an edited old event on the next full pass and publish 0", async () => {
    const { verifier } = await withEvents();
    await verifier.pass();
    const sqlite = ctx.deps.db.$client;
    sqlite.run("DROP TRIGGER audit_events_no_update");
    sqlite.run("UPDATE audit_events SET outcome = 'failure' WHERE seq = 2");

    // Incremental passes look only past the verified head...
    expect(await verifier.pass()).toMatchObject({ ok: true, checked: 0 });
    // ...the daily full pass starts over and catches the edit.
    ctx.clock.advance(24 * HOUR);
    const full = await verifier.pass();
    expect(full).toMatchObject({ ok: false, brokenAt: { seq: 2 } });
    expect((await gauges()).verified).toBe(0);
    // A broken chain stays broken: the next pass starts over again rather than past the break.
    expect(await verifier.pass()).toMatchObject({ ok: false, brokenAt: { seq: 2 } });
  });

  test("verifyAll should walk the whole chain a chunk per event-loop turn, one walk for every caller", async () => {
    const { verifier } = await withEvents();
    await verifier.pass();
    const sqlite = ctx.deps.db.$client;
    sqlite.run("DROP TRIGGER audit_events_no_update");
    sqlite.run("UPDATE audit_events SET outcome = 'failure' WHERE seq = 7");

    const walk = verifier.verifyAll();
    // Asked again while it runs: the same walk, not a second one.
    expect(verifier.verifyAll()).toBe(walk);
    let settled = false;
    void walk.then(() => {
      settled = true;
    });
    // Chunks of 3 links: the break at seq 7 is in the third chunk, two turns later.
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    // A full walk whatever the incremental position: it finds an edit behind the verified head.
    expect(await walk).toMatchObject({ ok: false, brokenAt: { seq: 7 } });
    expect((await gauges()).verified).toBe(0);
    // Once it settled, the next caller starts a walk of its own.
    const again = verifier.verifyAll();
    expect(again).not.toBe(walk);
    expect(await again).toMatchObject({ ok: false, brokenAt: { seq: 7 } });
  });

  test("should resume at retention's checkpoint when retention archived past the verified head", async () => {
    const { admin, verifier } = await withEvents();
    await verifier.pass();
    const head = lastSeq();
    await appendEvents(admin, 3);
    const cutoff = ctx.clock.now() + 1;
    await appendEvents(admin, 1);
    // Archive everything but the last event: the checkpoint lies beyond the verified head.
    const archived = archiveOlderThan(
      ctx.deps.db,
      ctx.deps.config.dataDir,
      cutoff,
      ctx.clock,
      ctx.deps.security.auditKey,
    );
    expect(archived.throughSeq).toBeGreaterThan(head);
    const next = await verifier.pass();
    expect(next).toMatchObject({ ok: true, checked: 1, head: { seq: lastSeq() } });
  });

  test("GET /v1/audit/verify should publish its verdict too", async () => {
    const { admin } = await withEvents();
    ctx.clock.advance(5000);
    const res = await ctx.req("GET", "/v1/audit/verify", { headers: admin.auth });
    expect(await res.json()).toMatchObject({ ok: true });
    expect(await gauges()).toEqual({ verified: 1, at: ctx.clock.now() / 1000 });
  });

  test("the worker should verify at start-up and stop cleanly", async () => {
    const { verifier } = await withEvents();
    const worker = startChainVerification(verifier, 60_000, ctx.deps.log);
    await waitFor(async () => (await gauges()).verified === 1, 5000, "the first pass");
    expect((await gauges()).at).toBe(ctx.clock.now() / 1000);
    await worker.stop();
  });
});
