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
