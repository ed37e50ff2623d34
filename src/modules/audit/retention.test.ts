import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTestContext, type TestContext } from "../../testing/app";
import { seedAndLogin } from "../../testing/identity";
import { archiveOlderThan } from "./retention";
import { verifyChain } from "./verify";

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(() => ctx.close());

const DAY = 86_400_000;
const archiveBefore = (cutoffMs: number) =>
  archiveOlderThan(ctx.deps.db, ctx.deps.config.dataDir, cutoffMs, ctx.clock, ctx.deps.security.auditKey);
const record = (target: string) =>
  ctx.deps.security.audit.record({
    action: "user.create",
    outcome: "success",
    tenantId: "acme",
    actor: { type: "system", id: "test" },
    target: { type: "user", id: target },
  });

describe("audit retention", () => {
  test("should archive old events to NDJSON, keep the chain verifiable, and keep the trail append-only", async () => {
    for (let i = 0; i < 5; i++) record(`old-${i}`);
    ctx.clock.advance(40 * DAY);
    for (let i = 0; i < 3; i++) record(`new-${i}`);
    const before = ctx.auditEvents();
    const oldSeqs = before.filter((row) => row.target_id?.startsWith("old-")).map((row) => row.seq);

    const result = archiveBefore(ctx.clock.now() - 30 * DAY);
    expect(result.archived).toBe(oldSeqs.length);
    expect(result.throughSeq).toBe(Math.max(...oldSeqs));

    const archive = readFileSync(join(ctx.deps.config.dataDir, result.file ?? ""), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(archive.map((row) => row.target_id)).toEqual(oldSeqs.map((_, i) => `old-${i}`));
    expect(archive.at(-1).hash).toBe(before.find((row) => row.seq === result.throughSeq)?.hash);

    const remaining = ctx.auditEvents();
    expect(remaining.map((row) => row.target_id)).toEqual(["new-0", "new-1", "new-2"]);
    const report = verifyChain(ctx.deps.db.$client, ctx.deps.security.auditKey);
    expect(report).toMatchObject({ ok: true, checked: 3, from: result.throughSeq });

    // The no-delete trigger is back.
    expect(() => ctx.deps.db.$client.run("DELETE FROM audit_events")).toThrow("append-only");
    expect(ctx.auditEvents()).toHaveLength(3);

    // New events chain on, and a second archive continues from the checkpoint.
    const admin = await seedAndLogin(ctx, "acme", "admin");
    const verify = await ctx.req("GET", "/v1/audit/verify", { headers: admin.auth });
    expect(await verify.json()).toMatchObject({ ok: true, from: result.throughSeq });
    ctx.clock.advance(40 * DAY);
    const again = archiveBefore(ctx.clock.now() - 30 * DAY);
    expect(again.archived).toBeGreaterThanOrEqual(5);
    expect(verifyChain(ctx.deps.db.$client, ctx.deps.security.auditKey)).toMatchObject({ ok: true, checked: 0 });
  });

  test("should do nothing when no event is old enough", () => {
    expect(archiveBefore(0)).toEqual({ archived: 0 });
  });
});
