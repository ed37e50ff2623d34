import { describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { adapterWithDefaultHeaders } from "./response-adapter";

const DEFAULTS = { "x-frame-options": "DENY", "referrer-policy": "no-referrer", "x-content-type-options": "nosniff" };

/** The same routes on Elysia's own adapter and on ours: every response must come out identical. */
function build(adapter?: ReturnType<typeof adapterWithDefaultHeaders>) {
  return new Elysia({ adapter })
    .headers(DEFAULTS)
    .onError(({ set }) => {
      set.headers["content-type"] = "application/problem+json";
      return JSON.stringify({ status: set.status });
    })
    .get("/object", () => ({ a: 1, b: "two" }))
    .get("/array", () => [1, 2, 3])
    .get("/text", () => "plain")
    .get("/extra", ({ set }) => {
      set.headers["x-request-id"] = "abc";
      set.headers["cache-control"] = "no-store";
      return { ok: true };
    })
    .get("/override", ({ set }) => {
      set.headers["x-frame-options"] = "SAMEORIGIN";
      return "<html></html>";
    })
    .get("/deleted", ({ set }) => {
      delete set.headers["referrer-policy"];
      return { ok: true };
    })
    .post("/created", ({ set }) => {
      set.status = 201;
      return { id: 1 };
    })
    .get("/named-status", ({ set }) => {
      set.status = "Accepted";
      return { queued: true };
    })
    .get("/cookie", ({ cookie: { session } }) => {
      session?.set({ value: "s1", httpOnly: true });
      return { ok: true };
    })
    .get("/response", () => new Response("raw", { headers: { "x-own": "1" } }))
    .get("/boom", () => {
      throw new Error("boom");
    })
    .get("/early", ({ set }) => {
      set.headers["content-type"] = "text/html; charset=utf-8";
      return "<p>early</p>";
    });
}

const stock = build();
const ours = build(adapterWithDefaultHeaders(DEFAULTS));

async function snapshot(app: ReturnType<typeof build>, method: string, path: string) {
  const response = await app.handle(new Request(`http://localhost${path}`, { method }));
  return { status: response.status, headers: [...response.headers].sort(), body: await response.text() };
}

describe("adapterWithDefaultHeaders", () => {
  test.each([
    ["GET", "/object"],
    ["GET", "/array"],
    ["GET", "/text"],
    ["GET", "/extra"],
    ["GET", "/override"],
    ["GET", "/deleted"],
    ["POST", "/created"],
    ["GET", "/named-status"],
    ["GET", "/cookie"],
    ["GET", "/response"],
    ["GET", "/boom"],
    ["GET", "/early"],
    ["GET", "/nope"],
  ])("should answer %s %s exactly as Elysia's own adapter", async (method, path) => {
    const expected = await snapshot(stock, method, path);
    expect(await snapshot(ours, method, path)).toEqual(expected);
    expect(expected.headers.length).toBeGreaterThan(0);
  });

  test("should keep the defaults on every response, and drop only a deleted one", async () => {
    const object = await ours.handle(new Request("http://localhost/object"));
    for (const [name, value] of Object.entries(DEFAULTS)) expect(object.headers.get(name)).toBe(value);
    const deleted = await ours.handle(new Request("http://localhost/deleted"));
    expect(deleted.headers.get("referrer-policy")).toBeNull();
    expect(deleted.headers.get("x-frame-options")).toBe("DENY");
  });
});
