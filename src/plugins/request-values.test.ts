import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../testing/app";
import { type LoggedIn, seedAndLogin } from "../testing/identity";

let ctx: TestContext;
let dev: LoggedIn;

beforeAll(async () => {
  ctx = await createTestContext();
  dev = await seedAndLogin(ctx, "acme", "developer");
});
afterAll(() => ctx.close());

// The developer itself, by role: the table is built before any user exists.
const recipients = `{"role":"developer"}`;
const notification = (fields: string) => `{"recipients":${recipients},"type":"t.x","title":"ok"${fields}}`;
const feedback = (fields: string) => `{"subject_type":"alert","subject_id":"values","verdict":"useful"${fields}}`;

/** Bodies as raw JSON text: JSON.stringify cannot write 1e400, and the point is what a client may send. */
describe("values a JSON body may hold but the service could not keep as sent", () => {
  test.each([
    ["/v1/notifications", notification(`,"data":{"n":1e400}`), "data.n", "Expected a number a double can hold"],
    [
      "/v1/notifications",
      notification(`,"data":{"list":[1,-1e999]}`),
      "data.list.1",
      "Expected a number a double can hold",
    ],
    ["/v1/notifications", `{"recipients":${recipients},"type":"t.x","title":"\\ud800x"}`, "title", "lone surrogates"],
    ["/v1/notifications", notification(`,"data":{"k":"a\\udfffb"}`), "data.k", "lone surrogates"],
    ["/v1/notifications", notification(`,"data":{"__proto__":{"a":1},"b":2}`), "data.__proto__", "not allowed"],
    ["/v1/feedback", feedback(`,"labels":{"__proto__":"x","team":"z"}`), "labels.__proto__", "not allowed"],
    ["/v1/feedback", feedback(`,"comment":"\\ud83d"`), "comment", "lone surrogates"],
    // Keys too: a label's or a notification data's key is stored and sent on as it came.
    ["/v1/feedback", feedback(`,"labels":{"\\ud800":"v"}`), "labels.\\ud800", "keys without lone surrogates"],
    ["/v1/notifications", notification(`,"data":{"a":{"x\\udc00":1}}`), "data.a.x\\udc00", "keys without lone"],
    // A key sent twice: JSON.parse would keep the last, silently.
    ["/v1/feedback", feedback(`,"verdict":"false_positive"`), "verdict", "sent more than once"],
    ["/v1/feedback", feedback(`,"labels":{"env":"prod","team":"a:b","env":"dev"}`), "labels.env", "more than once"],
    ["/v1/notifications", notification(`,"data":{"l":[{"k":1},{"k":":","k":2}]}`), "data.l.1.k", "more than once"],
  ])("POST %s %s → 422 naming %s", async (path, body, field, message) => {
    const before = (await (await ctx.req("GET", "/v1/notifications", { headers: dev.auth })).json()).notifications;
    const res = await ctx.req("POST", path, { body, headers: dev.auth });
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    const [error] = (await res.json()).errors;
    expect(error).toMatchObject({ in: "body", field });
    expect(error.message).toContain(message);
    const after = (await (await ctx.req("GET", "/v1/notifications", { headers: dev.auth })).json()).notifications;
    expect(after).toEqual(before);
  });

  test("well-formed text, a surrogate pair, large but finite numbers and ordinary keys are kept as sent", async () => {
    const body = notification(`,"data":{"emoji":"\\ud83d\\ude00","big":1.7976931348623157e308,"constructor":"c"}`);
    const res = await ctx.req("POST", "/v1/notifications", { body, headers: dev.auth });
    expect(res.status).toBe(201);
    const { notification: created } = await res.json();
    expect(created.data).toEqual({ emoji: "😀", big: 1.7976931348623157e308, constructor: "c" });
    const listed = (await (await ctx.req("GET", "/v1/notifications", { headers: dev.auth })).json()).notifications;
    expect(listed.find((n: { id: string }) => n.id === created.id)?.data).toEqual(created.data);
  });
});

describe("a field sent twice", () => {
  test("in a form is a 422 naming it, and nothing is written", async () => {
    const admin = await seedAndLogin(ctx, "acme", "admin");
    const users = () => ctx.deps.db.$client.query("SELECT id FROM users").all().length;
    const before = users();
    const res = await ctx.req("POST", "/v1/admin/users", {
      body: "email=twice%40acme.test&role=viewer&role=admin",
      headers: { ...admin.auth, "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(422);
    expect((await res.json()).errors).toEqual([
      { in: "body", field: "role", message: "role is sent more than once; send it once." },
    ]);
    expect(users()).toBe(before);
  });

  test("on the token endpoint, in JSON too, is invalid_request naming it", async () => {
    const res = await ctx.req("POST", "/v1/auth/token", {
      body: '{"grant_type":"client_credentials","client_secret":"x","client_secret":"y"}',
    });
    expect(res.status).toBe(400);
    const problem = await res.json();
    expect(problem.error).toBe("invalid_request");
    expect(problem.errors[0].field).toBe("client_secret");
  });

  test("colons in values and one key in several objects are no repeat", async () => {
    const body = feedback(`,"comment":"at 10:30: paged","labels":{"verdict":"a:b","url":"http://x:1/"}`);
    expect((await ctx.req("POST", "/v1/feedback", { body, headers: dev.auth })).status).toBe(202);
  });
});

describe("who may not use a route hears so before anything about the values it sent", () => {
  const sendAs = (path: string, body: string, headers: Record<string, string>) =>
    ctx.app.handle(
      new Request(`http://localhost${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
      }),
    );

  test.each([
    ["/v1/admin/users", '{"email":"a@b.test","role":"viewer","n":1e400}'],
    ["/v1/admin/users", '{"email":"\\ud800"}'],
    ["/v1/notifications", notification(`,"data":{"__proto__":{}}`)],
  ])("POST %s %s: 401 without a token, 403 for a role too small", async (path, body) => {
    expect((await sendAs(path, body, {})).status).toBe(401);
    const viewer = await seedAndLogin(ctx, "acme", "viewer");
    const denied = await sendAs(path, body, viewer.auth);
    expect(denied.status).toBe(403);
    expect(await denied.text()).not.toContain("errors");
  });
});

describe("bodies that are not UTF-8", () => {
  const post = (body: Uint8Array | ReadableStream, contentType: string, length = true) =>
    ctx.app.handle(
      new Request("http://localhost/v1/feedback", {
        method: "POST",
        headers: {
          ...dev.auth,
          "content-type": contentType,
          ...(length && body instanceof Uint8Array ? { "content-length": String(body.byteLength) } : {}),
        },
        body: body as BodyInit,
      }),
    );
  const bytes = (...parts: (string | number[])[]) =>
    Buffer.concat(parts.map((part) => (typeof part === "string" ? Buffer.from(part) : Buffer.from(part))));

  test("a body that stops coming (the client went away) is a 4xx, not a server error", async () => {
    const cut = () =>
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"subject_type":"alert",'));
          controller.error(new DOMException("The client went away", "AbortError"));
        },
      });
    for (const length of [true, false]) {
      const res = await ctx.app.handle(
        new Request("http://localhost/v1/feedback", {
          method: "POST",
          headers: { ...dev.auth, "content-type": "application/json", ...(length ? { "content-length": "60" } : {}) },
          body: cut(),
        }),
      );
      expect(res.status).toBe(400);
      expect((await res.json()).type).toBe("urn:warden:problem:incomplete-body");
    }
    expect(ctx.logs.filter((line) => line.msg === "unhandled error")).toEqual([]);
  });

  test("invalid bytes in JSON, sent whole or chunked, are a 400, not U+FFFD stored in their place", async () => {
    const body = bytes('{"subject_type":"alert","subject_id":"', [0xff, 0xfe], '","verdict":"useful"}');
    const whole = await post(body, "application/json");
    expect(whole.status).toBe(400);
    expect((await whole.json()).detail).toContain("UTF-8");
    const chunked = new ReadableStream({
      start(controller) {
        controller.enqueue(body.subarray(0, 20));
        controller.enqueue(body.subarray(20));
        controller.close();
      },
    });
    expect((await post(chunked, "application/json", false)).status).toBe(400);
    // Whole bodies share one decoder: a refusal, even mid-character, leaves nothing behind for the next.
    const cut = await post(bytes('{"subject_id":"', [0xe2, 0x82]), "application/json");
    expect(cut.status).toBe(400);
    const next = await post(
      bytes('{"subject_type":"alert","subject_id":"€uro","verdict":"useful"}'),
      "application/json",
    );
    expect(next.status).toBe(202);
    const listed = await ctx.app.handle(
      new Request("http://localhost/v1/feedback?subject_id=%E2%82%ACuro", { headers: dev.auth }),
    );
    expect((await listed.json()).items.map((item: { subject_id: string }) => item.subject_id)).toEqual(["€uro"]);
  });

  test("a form's percent-encoded bytes that are not UTF-8 are a 400; a real U+FFFD is kept", async () => {
    const bad = await post(bytes("subject_type=alert&subject_id=%FF%FE&verdict=useful"), FORM_TYPE);
    expect(bad.status).toBe(400);
    const kept = await post(bytes("subject_type=alert&subject_id=%EF%BF%BDx&verdict=useful"), FORM_TYPE);
    expect(kept.status).toBe(202);
  });

  test("a charset other than UTF-8 is a 415", async () => {
    const body = bytes('{"subject_type":"alert","subject_id":"cs","verdict":"useful"}');
    expect((await post(body, "application/json; charset=utf-16")).status).toBe(415);
    expect((await post(body, "application/json; charset=UTF-8")).status).toBe(202);
  });
});

const FORM_TYPE = "application/x-www-form-urlencoded";
