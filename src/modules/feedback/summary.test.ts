import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { WriteBatcher } from "../../lib/write-batcher";
import type { TestContext } from "../../testing/app";
import { type FeedbackStoreName, feedbackContext } from "../../testing/feedback";
import { type LoggedIn, login, seedAndLogin } from "../../testing/identity";
import { SqliteFeedbackStore } from "./sqlite-store";

const TTL_SECONDS = 600;

interface SubjectRow {
  subject_type: string;
  subject_id: string;
  total: number;
  by_verdict: Record<string, number>;
}
interface SummaryPage {
  total: number;
  by_verdict: Record<string, number>;
  false_positive_rate: number;
  subjects: SubjectRow[];
  next_cursor: string | null;
}

describe.each([["SQLite"], ["Redis"]])("the feedback summary in %s", (store) => {
  let world: Awaited<ReturnType<typeof feedbackContext>>;
  let ctx: TestContext;
  let viewer: LoggedIn;

  beforeAll(async () => {
    world = await feedbackContext(store as FeedbackStoreName, { FEEDBACK_TTL_SECONDS: String(TTL_SECONDS) });
    ctx = world.ctx;
    viewer = await seedAndLogin(ctx, `summary-${store.toLowerCase()}`, "viewer");
  });
  afterAll(() => world.close());

  const give = async (subject_id: string, verdict = "useful", subject_type = "alert") => {
    const res = await ctx.req("POST", "/v1/feedback", {
      body: { subject_type, subject_id, verdict },
      headers: viewer.auth,
    });
    expect(res.status).toBe(202);
  };
  const summary = async (query = ""): Promise<SummaryPage> => {
    const res = await ctx.req("GET", `/v1/feedback/summary${query}`, { headers: viewer.auth });
    expect(res.status).toBe(200);
    return (await res.json()) as SummaryPage;
  };
  /** Every page from the first, `limit` at a time. */
  const allPages = async (limit: number): Promise<SummaryPage[]> => {
    const pages = [await summary(`?limit=${limit}`)];
    for (let cursor = pages[0]?.next_cursor; cursor; cursor = pages.at(-1)?.next_cursor) {
      pages.push(await summary(`?limit=${limit}&cursor=${cursor}`));
      expect(pages.length).toBeLessThan(50);
    }
    return pages;
  };

  test("totals cover every subject; the pages list each subject once, the latest feedback first", async () => {
    for (const subject of ["s1", "s2", "s3", "s4", "s5"]) {
      await give(subject, subject === "s2" ? "false_positive" : "useful");
      ctx.clock.advance(1000);
    }
    await give("s1", "false_positive"); // s1 now has the latest feedback
    const first = await summary("?limit=2");
    expect(first.total).toBe(6);
    expect(first.by_verdict).toEqual({ useful: 4, false_positive: 2 });
    expect(first.subjects.map((s) => s.subject_id)).toEqual(["s1", "s5"]);
    expect(first.subjects[0]).toMatchObject({ total: 2, by_verdict: { useful: 1, false_positive: 1 } });
    const pages = await allPages(2);
    expect(pages.flatMap((page) => page.subjects.map((s) => s.subject_id))).toEqual(["s1", "s5", "s4", "s3", "s2"]);
    expect(pages.at(-1)?.next_cursor).toBeNull();
    for (const page of pages) expect(page.total).toBe(6);
  });

  test("subjects whose latest feedback came at the same moment are neither skipped nor repeated", async () => {
    ctx.clock.advance(1000);
    // Past U+E000, UTF-16 and UTF-8 order disagree: Redis orders ties by bytes.
    const tied = ["t-a", "t-b", "\u{1F600}t", "\uFF21t"];
    for (const subject of tied) await give(subject);
    const seen = (await allPages(1)).flatMap((page) => page.subjects.map((s) => s.subject_id));
    const byBytes = [...tied].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(seen.slice(0, 4)).toEqual(byBytes.reverse());
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toHaveLength(9);
  });

  test("alert 42, incident 42 and recommendation 42 are three subjects, each with its own counts", async () => {
    ctx.clock.advance(1000);
    await give("42", "false_positive", "alert");
    await give("42", "useful", "incident");
    await give("42", "not_useful", "recommendation");
    await give("42", "false_positive", "alert");
    const page = await summary("?limit=3");
    // All given in one millisecond: tied, so by "type:id", greater first, as Redis orders its members.
    expect(page.subjects.map((s) => [s.subject_type, s.subject_id, s.total])).toEqual([
      ["recommendation", "42", 1],
      ["incident", "42", 1],
      ["alert", "42", 2],
    ]);
    expect(page.subjects[2]).toMatchObject({ by_verdict: { false_positive: 2 }, false_positive_rate: 1 });
    const list = async (query: string) => {
      const res = await ctx.req("GET", `/v1/feedback?subject_id=42${query}`, { headers: viewer.auth });
      expect(res.status).toBe(200);
      return ((await res.json()) as { items: { subject_type: string }[] }).items.map((item) => item.subject_type);
    };
    expect(await list("&subject_type=alert")).toEqual(["alert", "alert"]);
    expect(await list("&subject_type=incident")).toEqual(["incident"]);
    // Without a type: every subject with this id, newest first, paged as one list.
    expect(await list("")).toEqual(["alert", "recommendation", "incident", "alert"]);
    const firstTwo = await (
      await ctx.req("GET", "/v1/feedback?subject_id=42&limit=2", { headers: viewer.auth })
    ).json();
    const rest = await (
      await ctx.req("GET", `/v1/feedback?subject_id=42&limit=2&cursor=${firstTwo.next_cursor}`, {
        headers: viewer.auth,
      })
    ).json();
    expect(rest.items.map((item: { subject_type: string }) => item.subject_type)).toEqual(["incident", "alert"]);
    const bad = await ctx.req("GET", "/v1/feedback?subject_id=42&subject_type=ticket", { headers: viewer.auth });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual([
      "subject_type",
    ]);
  });

  test("a cursor it hands out is taken back, whatever the subject id holds", async () => {
    ctx.clock.advance(1000);
    // Three UTF-8 bytes a character: the longest cursor a subject id can make (control
    // characters, six bytes escaped, are refused).
    await give("€".repeat(200));
    await give("€".repeat(199));
    const first = await summary("?limit=1");
    expect(first.next_cursor?.length).toBeGreaterThan(800);
    const next = await ctx.req("GET", `/v1/feedback/summary?limit=1&cursor=${first.next_cursor}`, {
      headers: viewer.auth,
    });
    expect(next.status).toBe(200);
    expect(((await next.json()) as SummaryPage).subjects[0]?.subject_id).toBe("€".repeat(199));
  });

  test("a cursor or limit the API did not hand out is a 422 naming it", async () => {
    for (const [query, field] of [
      ["?cursor=not-a-cursor", "cursor"],
      [`?cursor=${Buffer.from('["x","y"]').toString("base64url")}`, "cursor"],
      // The shape before subjects had a type, and a type that is none.
      [`?cursor=${Buffer.from('[1,"s1"]').toString("base64url")}`, "cursor"],
      [`?cursor=${Buffer.from('[1,"ticket","s1"]').toString("base64url")}`, "cursor"],
      ["?limit=0", "limit"],
      ["?limit=1001", "limit"],
    ] as const) {
      const res = await ctx.req("GET", `/v1/feedback/summary${query}`, { headers: viewer.auth });
      expect(res.status).toBe(422);
      const problem = (await res.json()) as { errors: { field: string }[] };
      expect(problem.errors.map((e) => e.field)).toContain(field);
    }
  });

  test("expired feedback leaves the totals and the pages", async () => {
    ctx.clock.advance((TTL_SECONDS - 1) * 1000); // past every expiry but the last test's two subjects'
    viewer = await login(ctx, viewer);
    const after = await summary();
    expect(after.subjects.map((s) => s.subject_id.length)).toEqual([200, 199]);
    expect(after.total).toBe(2);
    ctx.clock.advance(TTL_SECONDS * 1000);
    viewer = await login(ctx, viewer);
    expect(await summary()).toEqual({
      total: 0,
      by_verdict: {},
      false_positive_rate: 0,
      subjects: [],
      next_cursor: null,
    });
  });
});

describe("the SQLite summary's per-subject counts", () => {
  test("kept by each write and each sweep, they are what a count of the entries gives", async () => {
    const world = await feedbackContext("SQLite", { FEEDBACK_TTL_SECONDS: String(TTL_SECONDS) });
    const { ctx } = world;
    try {
      const viewer = await seedAndLogin(ctx, "counts", "viewer");
      const verdicts = ["useful", "not_useful", "false_positive", "true_positive"];
      for (let i = 0; i < 24; i++) {
        const res = await ctx.req("POST", "/v1/feedback", {
          body: {
            subject_type: i % 3 === 0 ? "incident" : "alert",
            subject_id: `s-${i % 5}`,
            verdict: verdicts[i % 4],
          },
          headers: viewer.auth,
        });
        expect(res.status).toBe(202);
        if (i === 11) ctx.clock.advance(TTL_SECONDS * 500); // the first twelve expire first
      }
      const table = () => [
        ...ctx.deps.db.$client
          .query("SELECT * FROM feedback_subject_counts ORDER BY tenant_id, subject_type, subject_id")
          .all(),
        ...ctx.deps.db.$client.query("SELECT * FROM feedback_tenant_counts ORDER BY tenant_id").all(),
      ];
      const kept = () => JSON.stringify(table());
      ctx.clock.advance(TTL_SECONDS * 600);
      expect(ctx.deps.feedback.sweepExpired()).toBe(12);
      const incremental = kept();
      // What every start does: the counts taken again from the entries.
      new SqliteFeedbackStore(ctx.deps.db, ctx.clock, new WriteBatcher(ctx.deps.db.$client)).reconcile();
      expect(kept()).toBe(incremental);
      expect(table().length).toBeGreaterThan(0);
    } finally {
      await world.close();
    }
  });
});
