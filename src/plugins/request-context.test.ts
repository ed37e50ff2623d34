import { afterAll, describe, expect, test } from "bun:test";
import { createTestContext } from "../testing/app";

const ctx = await createTestContext();
afterAll(() => ctx.close());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("request context", () => {
  test("should echo a sane X-Request-ID", async () => {
    const res = await ctx.req("GET", "/health", { headers: { "x-request-id": "abc.DEF_123-xyz" } });
    expect(res.headers.get("x-request-id")).toBe("abc.DEF_123-xyz");
  });

  test.each([
    ["too long", "a".repeat(129)],
    ["with spaces", "abc def"],
    ["with a newline escape", "abc%0d%0aset-cookie"],
    ["with quotes", 'abc"def'],
    ["empty", ""],
  ])("should replace an X-Request-ID that is %s", async (_, value) => {
    const res = await ctx.req("GET", "/health", { headers: { "x-request-id": value } });
    expect(res.headers.get("x-request-id")).toMatch(UUID);
  });

  test("should generate an id when none is sent, also on errors", async () => {
    const res = await ctx.req("GET", "/no/such/route");
    expect(res.status).toBe(404);
    const id = res.headers.get("x-request-id");
    expect(id).toMatch(UUID);
    expect((await res.json()).request_id).toBe(id);
  });

  test("should write one access log line per request with route template, status and duration", async () => {
    const res = await ctx.req("GET", "/swagger/assets/init.js", { headers: { "x-request-id": "log-line-test" } });
    expect(res.status).toBe(200);
    await Bun.sleep(5);
    const lines = ctx.logs.filter((line) => line.request_id === "log-line-test");
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({ msg: "request", method: "GET", route: "/swagger/assets/:file", status: 200 });
    expect(typeof line?.duration_ms).toBe("number");
    expect(typeof line?.time).toBe("string");
  });

  test("should log unmatched routes under one label", async () => {
    await ctx.req("GET", "/random/path/1", { headers: { "x-request-id": "unmatched-1" } });
    await Bun.sleep(5);
    expect(ctx.logs.find((line) => line.request_id === "unmatched-1")).toMatchObject({
      route: "unmatched",
      status: 404,
    });
  });
});
