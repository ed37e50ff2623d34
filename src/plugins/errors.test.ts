import { afterAll, describe, expect, test } from "bun:test";
import { t } from "elysia";
import { HttpProblem } from "../lib/problem";
import { createTestContext } from "../testing/app";
import { routeMethodIndex } from "./errors";
import { JSON_OR_FORM } from "./request-guards";

const ctx = await createTestContext();
const app = ctx.app
  .post("/test/items", ({ body }) => body, {
    body: t.Object({
      name: t.String({ minLength: 2 }),
      labels: t.Optional(t.Record(t.String(), t.String({ maxLength: 3 }))),
    }),
  })
  .post("/test/parsed", ({ body }) => body, { body: t.Object({ since: t.String() }), parse: JSON_OR_FORM })
  .get("/test/items/:id", ({ params }) => params, { params: t.Object({ id: t.Numeric() }) })
  .get("/test/boom", () => {
    throw new Error("database password is hunter2 at /srv/app/secret.ts:42");
  })
  .get("/test/conflict", () => {
    throw new HttpProblem(409, "conflict", "That name is taken.", { headers: { "retry-after": "3" } });
  });
afterAll(() => ctx.close());

const send = (method: string, path: string, body?: string, headers: Record<string, string> = {}) =>
  app.handle(new Request(`http://localhost${path}`, { method, body, headers }));

async function problem(res: Response) {
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = await res.json();
  expect(body).toMatchObject({ status: res.status, request_id: res.headers.get("x-request-id") });
  expect(body.type).toStartWith("urn:warden:problem:");
  expect(typeof body.title).toBe("string");
  expect(typeof body.detail).toBe("string");
  return body;
}

describe("errors", () => {
  test("should answer an unknown route with a 404 problem", async () => {
    const res = await send("GET", "/does/not/exist");
    expect(res.status).toBe(404);
    expect((await problem(res)).type).toBe("urn:warden:problem:not-found");
  });

  test("should answer a known path with the wrong method with 405 and Allow", async () => {
    const res = await send("DELETE", "/test/items");
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect((await problem(res)).detail).toContain("DELETE");
  });

  test("should answer 405 on templated paths too", async () => {
    const res = await send("PUT", "/health");
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
  });

  test("should name every invalid field of a body", async () => {
    const res = await send("POST", "/test/items", JSON.stringify({ name: "x", labels: { team: "toolong" } }), {
      "content-type": "application/json",
    });
    expect(res.status).toBe(422);
    const body = await problem(res);
    const fields = body.errors.map((e: { field: string }) => e.field);
    expect(fields).toContain("name");
    expect(fields).toContain("labels.team");
    expect(body.errors.every((e: { in: string }) => e.in === "body")).toBe(true);
    expect(body.detail).toContain("name");
  });

  test("should say a missing field is required, not that it has the wrong type", async () => {
    const res = await send("POST", "/test/items", JSON.stringify({ labels: {} }), {
      "content-type": "application/json",
    });
    expect(res.status).toBe(422);
    const body = await problem(res);
    expect(body.errors).toEqual([{ in: "body", field: "name", message: "Required; expected string" }]);
    expect(body.detail).toBe("Invalid body. name: Required; expected string.");
    const wrongType = await send("POST", "/test/items", JSON.stringify({ name: 42 }), {
      "content-type": "application/json",
    });
    expect((await problem(wrongType)).errors).toContainEqual({ in: "body", field: "name", message: "Expected string" });
  });

  test("should say a body is needed when none was sent, and unreadable when one was", async () => {
    const none = await problem(await send("POST", "/test/parsed"));
    expect(none).toMatchObject({ status: 400, type: "urn:warden:problem:missing-body" });
    expect(none.detail).toContain("none was sent");
    const blank = await problem(await send("POST", "/test/parsed", "  ", { "content-type": "application/json" }));
    expect(blank).toMatchObject({ status: 400, type: "urn:warden:problem:malformed-body" });
    const unreadable = await problem(await send("POST", "/test/parsed", "x", { "content-type": "text/plain" }));
    expect(unreadable.status).toBeGreaterThanOrEqual(400);
    expect(unreadable.status).toBeLessThan(500);
  });

  test("should report a missing body as a validation problem", async () => {
    const res = await send("POST", "/test/items");
    expect(res.status).toBe(422);
    expect((await problem(res)).errors[0].in).toBe("body");
  });

  test("should name an invalid path parameter", async () => {
    const res = await send("GET", "/test/items/abc");
    expect(res.status).toBe(422);
    const body = await problem(res);
    expect(body.errors[0]).toMatchObject({ in: "path", field: "id" });
  });

  test("should answer malformed JSON with 400, not 500", async () => {
    const res = await send("POST", "/test/items", '{"name": "ab",', { "content-type": "application/json" });
    expect(res.status).toBe(400);
    expect((await problem(res)).type).toBe("urn:warden:problem:malformed-json");
  });

  test("should refuse JSON nested deeper than 32 levels with 422 naming the field, before validation recurses", async () => {
    const nested = (levels: number) => "[".repeat(levels) + "]".repeat(levels);
    const json = { "content-type": "application/json" };
    // The body is level 1, so labels may hold 31 levels; 5 000 overflowed the validator's stack.
    for (const [levels, status] of [
      [31, 422], // within the limit: the schema's own 422 (labels must hold strings)
      [32, 422],
      [5_000, 422],
      [100_000, 422],
    ] as const) {
      const res = await send("POST", "/test/items", `{"name":"ok","labels":${nested(levels)}}`, json);
      expect(res.status).toBe(status);
      const error = (await problem(res)).errors[0];
      expect(error.in).toBe("body");
      expect(error.field).toStartWith("labels");
      expect(error.message.includes("nests deeper than 32 levels")).toBe(levels >= 32);
    }
    const top = await send("POST", "/test/items", nested(40), json);
    expect(top.status).toBe(422);
    expect((await problem(top)).errors[0]).toMatchObject({ in: "body", field: "" });
    expect((await send("POST", "/test/items", '{"name":"ok"}', json)).status).toBe(200);
  });

  test("should answer a content coding it does not decode with 415, not as malformed JSON", async () => {
    const gzip = Bun.gzipSync(new TextEncoder().encode('{"name":"ok"}'));
    const res = await app.handle(
      new Request("http://localhost/test/items", {
        method: "POST",
        body: gzip,
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
      }),
    );
    expect(res.status).toBe(415);
    expect((await problem(res)).type).toBe("urn:warden:problem:unsupported-content-encoding");
    const identity = { "content-type": "application/json", "content-encoding": "identity" };
    expect((await send("POST", "/test/items", '{"name":"ok"}', identity)).status).toBe(200);
  });

  test("should hide the message and stack of an unexpected error", async () => {
    const res = await send("GET", "/test/boom");
    expect(res.status).toBe(500);
    const text = await res.clone().text();
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("secret.ts");
    expect(text).not.toContain("at ");
    const body = await problem(res);
    expect(body.detail).toContain("request id");
    await Bun.sleep(5);
    const logged = ctx.logs.find((line) => line.msg === "unhandled error" && line.request_id === body.request_id);
    expect(logged).toBeDefined();
  });

  test("should carry a domain problem's status and headers", async () => {
    const res = await send("GET", "/test/conflict");
    expect(res.status).toBe(409);
    expect(res.headers.get("retry-after")).toBe("3");
    expect((await problem(res)).detail).toBe("That name is taken.");
  });

  test("should keep serving after errors", async () => {
    expect((await send("GET", "/health")).status).toBe(200);
  });
});

describe("routeMethodIndex", () => {
  const index = routeMethodIndex([
    { method: "GET", path: "/v1/things" },
    { method: "POST", path: "/v1/things" },
    { method: "DELETE", path: "/v1/things/:id" },
    { method: "GET", path: "/files/*" },
  ]);

  test.each([
    ["/v1/things", ["GET", "HEAD", "POST"]],
    ["/v1/things/", ["GET", "HEAD", "POST"]],
    ["/v1/things/42", ["DELETE"]],
    ["/v1/things/42/more", []],
    ["/files/a/b.txt", ["GET", "HEAD"]],
    ["/v1/thingsX", []],
  ])("should list the methods for %s", (path, methods) => {
    expect(index.methodsFor(path)).toEqual(methods);
  });
});
