import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { WriteBatcher } from "../../lib/write-batcher";
import type { TestContext } from "../../testing/app";
import { feedbackContext } from "../../testing/feedback";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";
import { SqliteFeedbackStore } from "./sqlite-store";

const TTL_SECONDS = 600;
const LIMIT = 3;

for (const store of ["SQLite", "Redis"] as const) {
  describe(`a subject's feedback limit (${store})`, () => {
    let world: Awaited<ReturnType<typeof feedbackContext>>;
    let ctx: TestContext;
    let viewer: LoggedIn;
    beforeAll(async () => {
      world = await feedbackContext(store, {
        FEEDBACK_TTL_SECONDS: String(TTL_SECONDS),
        FEEDBACK_MAX_PER_SUBJECT: String(LIMIT),
      });
      ctx = world.ctx;
      viewer = await seedAndLogin(ctx, `limit-${store.toLowerCase()}`, "viewer");
    });
    afterAll(() => world.close());

    const post = (subject_id: string, subject_type = "alert") =>
      ctx.req("POST", "/v1/feedback", {
        body: { subject_type, subject_id, verdict: "false_positive" },
        headers: viewer.auth,
      });
    const listed = async (subject: string) =>
      (
        (await (await ctx.req("GET", `/v1/feedback?subject_id=${subject}`, { headers: viewer.auth })).json()) as {
          items: unknown[];
        }
      ).items.length;

    test("a full subject should refuse the next entry with a 409, and keep what it holds", async () => {
      for (let i = 0; i < LIMIT; i++) expect((await post("s1")).status).toBe(202);
      const refused = await post("s1");
      expect(refused.status).toBe(409);
      const problem = (await refused.json()) as { type: string; detail: string };
      expect(problem.type).toBe("urn:warden:problem:subject-full");
      expect(problem.detail).toContain("FEEDBACK_MAX_PER_SUBJECT");
      expect(await listed("s1")).toBe(LIMIT);
      // Another subject, the same id with another type included, has room of its own.
      expect((await post("s1", "incident")).status).toBe(202);
    });

    test("entries sent together should count each other", async () => {
      const statuses = await Promise.all(Array.from({ length: 5 }, () => post("s2").then((res) => res.status)));
      expect(statuses.filter((status) => status === 202)).toHaveLength(LIMIT);
      expect(statuses.filter((status) => status === 409)).toHaveLength(5 - LIMIT);
      expect(await listed("s2")).toBe(LIMIT);
    });

    if (store === "SQLite") {
      test("counts left wrong by another version are taken again from the rows at start-up", async () => {
        // As an earlier version's sweep leaves them: rows gone, their count still there.
        ctx.deps.db.$client.run(
          "INSERT INTO feedback_subject_counts (tenant_id, subject_type, subject_id, held) VALUES (?, 'alert', 'drift', ?)",
          [`limit-sqlite`, LIMIT],
        );
        expect((await post("drift")).status).toBe(409);
        new SqliteFeedbackStore(ctx.deps.db, ctx.clock, new WriteBatcher(ctx.deps.db.$client)).reconcile();
        expect((await post("drift")).status).toBe(202);
        const held = ctx.deps.db.$client
          .query<{ subject_id: string; held: number }, []>(
            "SELECT subject_id, held FROM feedback_subject_counts WHERE subject_id IN ('drift', 's2') ORDER BY subject_id",
          )
          .all();
        expect(held).toEqual([
          { subject_id: "drift", held: 1 },
          { subject_id: "s2", held: LIMIT },
        ]);
      });
    }

    test("room should come back as entries expire", async () => {
      ctx.clock.advance((TTL_SECONDS + 1) * 1000);
      // Without Redis, expired entries leave their subject's count with the sweep (every minute).
      if (store === "SQLite") {
        expect((await post("s1")).status).toBe(409);
        expect(ctx.deps.feedback.sweepExpired()).toBeGreaterThan(0);
      }
      await seedAndLogin(ctx, `limit-${store.toLowerCase()}`, "viewer").then((fresh) => {
        viewer = fresh;
      });
      expect((await post("s1")).status).toBe(202);
    });
  });
}
