import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../testing/app";
import { type LoggedIn, seedAndLogin } from "../testing/identity";

/** Input that used to be taken as something other than what was sent; each is now a 4xx naming it. */
describe("input taken as something else is refused", () => {
  let ctx: TestContext;
  let admin: LoggedIn;
  let endpointId: string;
  beforeAll(async () => {
    ctx = await createTestContext();
    admin = await seedAndLogin(ctx, "acme", "admin");
    const created = await ctx.req("POST", "/v1/webhooks/endpoints", {
      headers: admin.auth,
      body: { url: "http://127.0.0.1:9/hook" },
    });
    endpointId = ((await created.json()) as { endpoint: { id: string } }).endpoint.id;
  });
  afterAll(() => ctx.close());

  const problemOf = async (res: Response) => {
    const problem = (await res.json()) as {
      type: string;
      detail: string;
      errors?: { field: string; message: string }[];
    };
    return {
      status: res.status,
      type: problem.type.split(":").pop(),
      field: problem.errors?.[0]?.field,
      detail: problem.detail,
    };
  };
  const rotate = (body: string, contentType = "application/json") =>
    ctx.fetch(
      new Request(`http://localhost/v1/webhooks/endpoints/${endpointId}/rotate-secret`, {
        method: "POST",
        headers: { ...admin.auth, "content-type": contentType },
        body,
      }),
    );

  test.each([['{"previous_secret_overlap_seconds":"-0"}'], ['{"previous_secret_overlap_seconds":"3600"}']])(
    "a JSON overlap sent as a string (%s) should be a 422, not an overlap",
    async (body) => {
      const before = ctx.auditEvents("webhook.rotate_secret").length;
      expect(await problemOf(await rotate(body))).toMatchObject({
        status: 422,
        field: "previous_secret_overlap_seconds",
      });
      expect(ctx.auditEvents("webhook.rotate_secret")).toHaveLength(before);
    },
  );

  test("the same overlap in a form, where every value is a string, should still rotate", async () => {
    const res = await rotate("previous_secret_overlap_seconds=60", "application/x-www-form-urlencoded");
    expect(res.status).toBe(200);
  });

  test("a JSON rating sent as a string should be a 422 naming it (the lean path and Elysia's)", async () => {
    for (const path of ["/v1/feedback", "/v1/feedback?via=elysia"]) {
      const res = await ctx.req("POST", path, {
        headers: admin.auth,
        body: { subject_type: "alert", subject_id: "a-1", verdict: "useful", rating: "3" },
      });
      expect(await problemOf(res)).toMatchObject({ status: 422, field: "rating" });
    }
  });

  test("a whitespace-only JSON body should be malformed, not taken for no body and its defaults", async () => {
    const before = ctx.auditEvents("webhook.rotate_secret").length;
    expect(await problemOf(await rotate("   "))).toMatchObject({ status: 400, type: "malformed-json" });
    expect(ctx.auditEvents("webhook.rotate_secret")).toHaveLength(before);
  });

  test.each([
    ["POST", "/v1/admin/api-keys"],
    ["POST", "/v1/webhooks/endpoints"],
    ["POST", "/v1/feedback"],
    ["POST", "/v1/admin/revocations/preview"],
  ])("a body that is no object sent to %s %s should be refused as a whole", async (method, path) => {
    for (const body of ["[]", "1", '"x"', "true", "null"]) {
      const res = await ctx.req(method, path, { headers: admin.auth, body });
      expect({ body, ...(await problemOf(res)) }).toEqual({
        body,
        status: 422,
        type: "validation",
        field: "",
        detail: "Invalid body. The request body as a whole: Expected object.",
      });
    }
  });

  test.each([
    ["/v1/notifications", { recipients: { role: "admin" }, type: "t.x", title: "a\u0000b" }, "title"],
    ["/v1/notifications", { recipients: { role: "admin" }, type: "t.x", title: "ok", body: "\u001b[31m" }, "body"],
    ["/v1/admin/api-keys", { name: "ci\u0007" }, "name"],
    ["/v1/webhooks/endpoints", { url: "http://127.0.0.1:9/d", description: "x\u0000" }, "description"],
    ["/v1/admin/revocations", { jti: "\u0000" }, "jti"],
    ["/v1/admin/revocations", { jti: " " }, "jti"],
  ])("control characters or blanks in %s %j should be a 422 naming %s", async (path, body, field) => {
    const res = await ctx.req("POST", path, { headers: admin.auth, body });
    expect(await problemOf(res)).toMatchObject({ status: 422, field });
  });

  // Only a failed text check reads "without control characters"; any other fault of a text
  // field says what it is.
  test.each([
    [
      "/v1/notifications",
      { recipients: { role: "admin" }, type: "t.x", title: "a\u0000b" },
      "title",
      "control characters",
    ],
    [
      "/v1/notifications",
      { recipients: { role: "admin" }, type: "t.x", title: "" },
      "title",
      "length greater or equal to 1",
    ],
    ["/v1/notifications", { recipients: { role: "admin" }, type: "t.x", title: 5 }, "title", "Expected string"],
    [
      "/v1/notifications",
      { recipients: { role: "admin" }, type: "t.x", title: "t".repeat(201) },
      "title",
      "length less or equal to 200",
    ],
    ["/v1/webhooks/endpoints", { url: "http://127.0.0.1:9/d", description: 123 }, "description", "Expected string"],
  ])("a text field's fault in %s %j should be told as it is (%s)", async (path, body, field, words) => {
    const res = await ctx.req("POST", path, { headers: admin.auth, body });
    const problem = await problemOf(res);
    expect(problem).toMatchObject({ status: 422, field });
    expect(problem.detail).toContain(words);
    if (words !== "control characters") expect(problem.detail).not.toContain("control characters");
  });

  // Elysia makes an object of a nested field's 5 or "x", and an array of a lone string: the
  // handler would then answer about what it made, not what was sent.
  test.each([
    [{ recipients: 5, type: "t.x", title: "t" }, "recipients", "Expected object"],
    [{ recipients: "admin", type: "t.x", title: "t" }, "recipients", "Expected object"],
    [{ recipients: [], type: "t.x", title: "t" }, "recipients", "Expected object"],
    [{ recipients: { user_ids: "u1" }, type: "t.x", title: "t" }, "recipients.user_ids", "Expected array"],
  ])("a nested field of the wrong shape %j should be named with the shape it takes", async (body, field, words) => {
    const res = await ctx.req("POST", "/v1/notifications", { headers: admin.auth, body });
    const problem = await problemOf(res);
    expect(problem).toMatchObject({ status: 422, field });
    expect(problem.detail).toContain(words);
  });

  test("a missing field is named once, with what it takes", async () => {
    const res = await ctx.req("POST", "/v1/notifications", { headers: admin.auth, body: { type: "t.x", title: "t" } });
    expect(res.status).toBe(422);
    const { errors } = (await res.json()) as { errors: { in: string; field: string; message: string }[] };
    expect(errors).toEqual([{ in: "body", field: "recipients", message: "Required; expected object" }]);
  });

  // In words, not as the regular expression the schema checks.
  test.each([
    ["GET", "/v1/notifications?cursor=garbage", undefined, "cursor", "Expected the next_cursor of a previous page"],
    ["GET", "/v1/admin/api-keys?cursor=garbage", undefined, "cursor", "Expected the next_cursor of a previous page"],
    ["POST", "/v1/admin/revocations", { jti: "a b" }, "jti", "Expected printable ASCII without spaces"],
    [
      "POST",
      "/v1/notifications",
      { recipients: { role: "admin" }, type: "a b", title: "t" },
      "type",
      "Expected a dotted event type",
    ],
    [
      "POST",
      "/v1/webhooks/endpoints",
      { url: "https://93.184.216.34/", event_types: ["a b"] },
      "event_types.0",
      "Expected an event type",
    ],
  ])("%s %s %j: a value its pattern refuses is described, naming %s", async (method, path, body, field, words) => {
    const res = await ctx.req(method, path, { headers: admin.auth, ...(body ? { body } : {}) });
    const problem = await problemOf(res);
    expect(problem).toMatchObject({ status: 422, field });
    expect(problem.detail).toContain(words);
    expect(problem.detail).not.toContain("^");
  });

  test("text with tabs and newlines is still plain text", async () => {
    const res = await ctx.req("POST", "/v1/notifications", {
      headers: admin.auth,
      body: { recipients: { role: "admin" }, type: "t.x", title: "a\tb", body: "line 1\r\nline 2" },
    });
    expect(res.status).toBe(201);
  });

  test.each([
    ["https://93.184.216.34:0/", "port"],
    ["https://93.184.216.34/\u0000", "control"],
    ["https://93.184.216.34/a b", "spaces"],
    ["\thttps://93.184.216.34/", "control"],
  ])("a receiver URL %j the parser would rewrite or never reach should be a 422", async (url, words) => {
    const res = await ctx.req("POST", "/v1/webhooks/endpoints", { headers: admin.auth, body: { url } });
    const problem = await problemOf(res);
    expect(problem).toMatchObject({ status: 422, field: "url" });
    expect(problem.detail).toContain(words);
  });

  test("two Idempotency-Key headers should be refused, not joined into a third key", async () => {
    const headers = new Headers({ ...admin.auth, "content-type": "application/json" });
    headers.append("idempotency-key", "A1");
    headers.append("idempotency-key", "B1");
    const res = await ctx.fetch(
      new Request("http://localhost/v1/notifications", {
        method: "POST",
        headers,
        body: JSON.stringify({ recipients: { role: "admin" }, type: "t.x", title: "twice" }),
      }),
    );
    expect(await problemOf(res)).toMatchObject({ status: 422, field: "idempotency-key" });
  });

  test.each([["%FF"], ["%ED%A0%80"]])("a path id that is not UTF-8 (%s) should be a 400 saying so", async (id) => {
    const res = await ctx.req("GET", `/v1/webhooks/endpoints/${id}`, { headers: admin.auth });
    expect(await problemOf(res)).toMatchObject({ status: 400, type: "malformed-path" });
  });

  test.each([
    ["/v1/feedback?subject_id=%FF"],
    ["/v1/audit?actor=%ED%A0%80"],
    ["/v1/audit?target=x%C3"],
    // Parameters with a type or a list of values: the schema saw U+FFFD and answered 422 first.
    ["/v1/notifications?limit=%FF"],
    ["/v1/notifications?unread=%FF"],
    ["/v1/audit?outcome=%FF"],
    ["/v1/webhooks/deliveries?status=%FF"],
    // A name that does not decode is named as it was sent.
    ["/v1/notifications?%FF=1"],
  ])("a query that is not UTF-8 (%s) should be a 400 saying so, not a filter matching nothing", async (path) => {
    const res = await ctx.req("GET", path, { headers: admin.auth });
    const field = path.slice(path.indexOf("?") + 1).split("=")[0];
    expect(await problemOf(res)).toMatchObject({ status: 400, type: "malformed-query", field });
  });

  test("a body field's error on a route that ignores its query is the body's, whatever the query holds", async () => {
    const res = await ctx.req("POST", "/v1/feedback?x=%FF", {
      headers: admin.auth,
      body: { subject_type: "alert", subject_id: "a-1", verdict: "useful", rating: "9" },
    });
    expect(await problemOf(res)).toMatchObject({ status: 422, field: "rating" });
  });

  test.each([
    ["/v1/audit?outcome=success&outcome=failure", "outcome"],
    ["/v1/feedback?subject_id=a&subject_id=b", "subject_id"],
  ])(
    "a query parameter sent twice (%s) should be a 422 naming it, not a filter by one of them",
    async (path, field) => {
      const res = await ctx.req("GET", path, { headers: admin.auth });
      expect(await problemOf(res)).toMatchObject({
        status: 422,
        field,
        detail: `${field} is sent more than once; send it once.`,
      });
    },
  );
});
