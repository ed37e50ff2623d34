import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";

// Shorter than an access token, so the clock can pass it without logging in again.
const TTL_SECONDS = 600;

describe("feedback without Redis (SQLite)", () => {
  let ctx: TestContext;
  let viewer: LoggedIn;
  let other: LoggedIn;
  beforeAll(async () => {
    ctx = await createTestContext({ FEEDBACK_TTL_SECONDS: String(TTL_SECONDS) });
    viewer = await seedAndLogin(ctx, "fb-a", "viewer");
    other = await seedAndLogin(ctx, "fb-b", "admin");
  });
  afterAll(() => ctx.close());

  const post = (who: LoggedIn, body: unknown) => ctx.req("POST", "/v1/feedback", { body, headers: who.auth });
  const get = (who: LoggedIn, path: string) => ctx.req("GET", path, { headers: who.auth });

  test("should accept feedback with 202, an id and its expiry", async () => {
    const res = await post(viewer, {
      subject_type: "alert",
      subject_id: "cpu-high-1",
      verdict: "useful",
      rating: 4,
      comment: "caught it early",
      labels: { team: "infra" },
    });
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body.id).toMatch(/^[0-9A-Z]{26}$/);
    expect(Date.parse(body.expires_at)).toBe(ctx.clock.now() + TTL_SECONDS * 1000);
    const listed = await (await get(viewer, "/v1/feedback?subject_id=cpu-high-1")).json();
    expect(listed.items).toHaveLength(1);
    expect(listed.items[0]).toMatchObject({
      id: body.id,
      subject_type: "alert",
      verdict: "useful",
      rating: 4,
      comment: "caught it early",
      labels: { team: "infra" },
      author: viewer.userId,
    });
  });

  test("should accept a form-encoded body too", async () => {
    const res = await ctx.req("POST", "/v1/feedback", {
      body: "subject_type=alert&subject_id=form-1&verdict=not_useful&rating=2",
      headers: { ...viewer.auth, "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(202);
    const listed = await (await get(viewer, "/v1/feedback?subject_id=form-1")).json();
    expect(listed.items[0]).toMatchObject({ verdict: "not_useful", rating: 2 });
  });

  test.each([
    ["subject_type", { subject_type: "ticket" }],
    ["subject_id", { subject_id: "x".repeat(201) }],
    ["subject_id", { subject_id: "" }],
    ["verdict", { verdict: "meh" }],
    ["rating", { rating: 6 }],
    ["rating", { rating: 2.5 }],
    // A string is coerced (as a form's is), then bounded: the field was once reported as the query's "".
    ["rating", { rating: "7" }],
    ["rating", { rating: "0" }],
    // Digits only: what `+value` would also read is refused.
    ["rating", { rating: "0x3" }],
    ["rating", { rating: " 4" }],
    ["rating", { rating: "4e0" }],
    ["comment", { comment: "x".repeat(2001) }],
    ["labels", { labels: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, "v"])) }],
    ["labels", { labels: { ["k".repeat(101)]: "v" } }],
    ["labels.team", { labels: { team: 7 } }],
    ["labels.team", { labels: { team: "x".repeat(201) } }],
    // Each of these was once turned into an object ({}, {"0":"a"}, {"0":"a","1":"b"}) and stored.
    ["labels", { labels: [] }],
    ["labels", { labels: ["a"] }],
    ["labels", { labels: "ab" }],
    ["labels", { labels: 5 }],
    ["labels", { labels: null }],
  ])("should refuse a bad %s with 422 naming it", async (field, patch) => {
    const res = await post(viewer, { subject_type: "alert", subject_id: "s", verdict: "useful", ...patch });
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    const problem = await res.json();
    expect(problem.errors.map((e: { field: string }) => e.field)).toContain(field);
  });

  test("a rating sent as a JSON string of digits should be a 422 naming rating (a form sends digits; JSON a number)", async () => {
    const res = await post(viewer, {
      subject_type: "alert",
      subject_id: "string-rating",
      verdict: "useful",
      rating: "3",
    });
    expect(res.status).toBe(422);
    expect((await res.json()).errors[0].field).toBe("rating");
    const listed = await (await get(viewer, "/v1/feedback?subject_id=string-rating")).json();
    expect(listed.items).toHaveLength(0);
  });

  test("a form's out-of-range rating should be a 422 naming rating in the body", async () => {
    const res = await ctx.req("POST", "/v1/feedback", {
      body: "subject_type=alert&subject_id=form-9&verdict=useful&rating=9",
      headers: { ...viewer.auth, "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(422);
    const problem = await res.json();
    expect(problem.errors).toEqual([{ in: "body", field: "rating", message: "Expected an integer from 1 to 5" }]);
    expect((await (await get(viewer, "/v1/feedback?subject_id=form-9")).json()).items).toHaveLength(0);
  });

  test("should say which integers a rating may be", async () => {
    const res = await post(viewer, { subject_type: "alert", subject_id: "s", verdict: "useful", rating: 6 });
    const problem = await res.json();
    expect(problem.errors[0]).toMatchObject({ field: "rating", message: "Expected an integer from 1 to 5" });
  });

  test("should refuse control characters in text, which would be stored six times their size, naming the field", async () => {
    const base = { subject_type: "alert", subject_id: "ctl", verdict: "useful" };
    for (const [body, field] of [
      [{ ...base, comment: "a\u0001b" }, "comment"],
      [{ ...base, subject_id: "x\u001f" }, "subject_id"],
      [{ ...base, labels: { team: "s\u0000re" } }, "labels.team"],
      [{ ...base, labels: { "t\u007f": "sre" } }, "labels"],
    ] as const) {
      const res = await post(viewer, body);
      expect(res.status).toBe(422);
      const problem = (await res.json()) as { errors: { in: string; field: string; message: string }[] };
      expect(problem.errors).toContainEqual({
        in: "body",
        field,
        message: expect.stringContaining("control characters"),
      });
    }
    expect((await (await get(viewer, "/v1/feedback?subject_id=ctl")).json()).items).toHaveLength(0);
    const fine = await post(viewer, { ...base, comment: "tab\there,\nnewline\r\n", labels: { team: "s\tre" } });
    expect(fine.status).toBe(202);
  });

  test("should refuse identifiers that display other than they are (bidi overrides, invisible characters)", async () => {
    const base = { subject_type: "alert", verdict: "useful" };
    for (const [body, field] of [
      [{ ...base, subject_id: "\u202e1234" }, "subject_id"],
      [{ ...base, subject_id: "alert\u200b-7" }, "subject_id"],
      [{ ...base, subject_id: "a\u2066b\u2069" }, "subject_id"],
      [{ ...base, subject_id: "\ufeffalert" }, "subject_id"],
      [{ ...base, subject_id: "two\nlines" }, "subject_id"],
      [{ ...base, subject_id: "bidi", labels: { "te\u200dam": "sre" } }, "labels"],
    ] as const) {
      const res = await post(viewer, body);
      expect(res.status).toBe(422);
      const problem = (await res.json()) as { errors: { in: string; field: string; message: string }[] };
      expect(problem.errors).toContainEqual({ in: "body", field, message: expect.stringContaining("bidirectional") });
    }
    const summary = (await (await get(viewer, "/v1/feedback/summary")).json()) as {
      subjects: { subject_id: string }[];
    };
    expect(summary.subjects.map((s) => s.subject_id)).not.toContain("\u202e1234");
    // Right-to-left text itself is an identifier like any other, and free text keeps its marks.
    const rtl = await post(viewer, {
      ...base,
      subject_id: "התראה-17",
      comment: "\u200fשגוי\u200f",
      labels: { team: "\u202bsre" },
    });
    expect(rtl.status).toBe(202);
  });

  test("should refuse a missing verdict or subject_type with 422 naming each, and the values allowed", async () => {
    const res = await post(viewer, { subject_id: "no-defaults" });
    expect(res.status).toBe(422);
    const problem = await res.json();
    expect(problem.errors.map((e: { field: string }) => e.field).sort()).toEqual(["subject_type", "verdict"]);
    expect(problem.detail).toContain("useful, not_useful, false_positive, true_positive");
    expect((await (await get(viewer, "/v1/feedback?subject_id=no-defaults")).json()).items).toHaveLength(0);
  });

  test("should refuse a missing subject_id with 422 and a missing subject_id query with 422", async () => {
    const res = await post(viewer, { subject_type: "alert", verdict: "useful" });
    expect(res.status).toBe(422);
    expect(JSON.stringify(await res.json())).toContain("subject_id");
    const list = await get(viewer, "/v1/feedback");
    expect(list.status).toBe(422);
    expect(JSON.stringify(await list.json())).toContain("subject_id");
  });

  test("should page newest first with a cursor", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ctx.clock.advance(1);
      const res = await post(viewer, { subject_type: "incident", subject_id: "paged", verdict: "true_positive" });
      ids.push((await res.json()).id);
    }
    const first = await (await get(viewer, "/v1/feedback?subject_id=paged&limit=2")).json();
    expect(first.items.map((i: { id: string }) => i.id)).toEqual([ids[4], ids[3]]);
    const second = await (
      await get(viewer, `/v1/feedback?subject_id=paged&limit=2&cursor=${first.next_cursor}`)
    ).json();
    expect(second.items.map((i: { id: string }) => i.id)).toEqual([ids[2], ids[1]]);
    const last = await (await get(viewer, `/v1/feedback?subject_id=paged&limit=2&cursor=${second.next_cursor}`)).json();
    expect(last.items.map((i: { id: string }) => i.id)).toEqual([ids[0]]);
    expect(last.next_cursor).toBeNull();
  });

  test("should summarise counts by verdict and the false-positive rate per subject", async () => {
    for (const verdict of ["false_positive", "false_positive", "true_positive", "useful"]) {
      expect((await post(viewer, { subject_type: "alert", subject_id: "noisy", verdict })).status).toBe(202);
    }
    const summary = await (await get(viewer, "/v1/feedback/summary")).json();
    const noisy = summary.subjects.find((s: { subject_id: string }) => s.subject_id === "noisy");
    expect(noisy).toEqual({
      subject_type: "alert",
      subject_id: "noisy",
      total: 4,
      by_verdict: { false_positive: 2, true_positive: 1, useful: 1 },
      false_positive_rate: 0.5,
    });
    expect(summary.total).toBe(summary.subjects.reduce((n: number, s: { total: number }) => n + s.total, 0));
  });

  test("should keep tenants apart", async () => {
    const list = await (await get(other, "/v1/feedback?subject_id=noisy")).json();
    expect(list.items).toEqual([]);
    const summary = await (await get(other, "/v1/feedback/summary")).json();
    expect(summary).toEqual({ total: 0, by_verdict: {}, false_positive_rate: 0, subjects: [], next_cursor: null });
  });

  test("should count accepted feedback in aiops_feedback_total", async () => {
    const text = await (await ctx.req("GET", "/metrics")).text();
    expect(text).toMatch(/aiops_feedback_total\{verdict="false_positive",subject_type="alert"\} 2/);
    expect(text).toContain("feedback_spool_depth 0");
    expect(text).not.toContain("redis_up");
  });

  test("should stop listing expired feedback and sweep it", async () => {
    const fresh = await seedAndLogin(ctx, "fb-expiry", "developer");
    expect(
      (await post(fresh, { subject_type: "recommendation", subject_id: "r1", verdict: "not_useful" })).status,
    ).toBe(202);
    ctx.clock.advance(TTL_SECONDS * 1000);
    expect((await (await get(fresh, "/v1/feedback?subject_id=r1")).json()).items).toEqual([]);
    expect((await (await get(fresh, "/v1/feedback/summary")).json()).total).toBe(0);
    const rowsFor = () =>
      ctx.deps.db.$client
        .query<{ n: number }, [string]>("SELECT count(*) AS n FROM feedback_entries WHERE tenant_id = ?")
        .get("fb-expiry")?.n;
    expect(rowsFor()).toBe(1);
    expect(ctx.deps.feedback.sweepExpired()).toBeGreaterThanOrEqual(1);
    expect(rowsFor()).toBe(0);
  });
});
