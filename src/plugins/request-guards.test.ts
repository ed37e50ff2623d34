import { afterAll, describe, expect, test } from "bun:test";
import { t } from "elysia";
import { createTestContext } from "../testing/app";

const ctx = await createTestContext({ HTTP_BODY_LIMIT_BYTES: "2048", HTTP_HEADER_LIMIT_BYTES: "4096" });
const app = ctx.app.post("/test/echo", ({ body }) => body, { body: t.Object({ text: t.String() }) });
afterAll(() => ctx.close());

const post = (body: BodyInit | null, headers: Record<string, string>) =>
  app.handle(new Request("http://localhost/test/echo", { method: "POST", body, headers }));

function chunked(text: string, chunks: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  const size = Math.ceil(bytes.length / chunks);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

describe("request guards", () => {
  test("should accept JSON within the limit", async () => {
    const res = await post(JSON.stringify({ text: "hello" }), { "content-type": "application/json" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ text: "hello" });
  });

  test("should accept a form-encoded body", async () => {
    const res = await post("text=from+a+form", { "content-type": "application/x-www-form-urlencoded" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ text: "from a form" });
  });

  test("should answer 413 when Content-Length exceeds the limit", async () => {
    const res = await post(JSON.stringify({ text: "x".repeat(5000) }), { "content-type": "application/json" });
    expect(res.status).toBe(413);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect((await res.json()).detail).toContain("2048");
  });

  test("should answer 413 when a chunked body grows past the limit", async () => {
    const body = chunked(JSON.stringify({ text: "y".repeat(5000) }), 8);
    const res = await app.handle(
      new Request("http://localhost/test/echo", {
        method: "POST",
        body,
        headers: { "content-type": "application/json" },
        duplex: "half",
      } as RequestInit),
    );
    expect(res.status).toBe(413);
  });

  test.each([
    ["text/plain", "hello"],
    ["application/xml", "<text>hi</text>"],
    ["multipart/form-data; boundary=x", "--x--"],
  ])("should answer 415 for %s", async (type, body) => {
    const res = await post(body, { "content-type": type });
    expect(res.status).toBe(415);
    const problem = await res.json();
    expect(problem.detail).toContain(type.split(";")[0]);
    expect(res.headers.get("accept-post")).toContain("application/json");
  });

  test("should answer 415 for a body without Content-Type", async () => {
    const res = await app.handle(new Request("http://localhost/test/echo", { method: "POST", body: new Blob(["x"]) }));
    expect(res.status).toBe(415);
  });

  test("should accept a +json media type", async () => {
    const res = await post(JSON.stringify({ text: "ok" }), { "content-type": "application/merge-patch+json" });
    expect(res.status).toBe(200);
  });

  test("should answer 431 when headers exceed the limit", async () => {
    const res = await app.handle(new Request("http://localhost/health", { headers: { "x-big": "z".repeat(5000) } }));
    expect(res.status).toBe(431);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });

  test("should pass bodiless requests through", async () => {
    expect((await app.handle(new Request("http://localhost/health"))).status).toBe(200);
  });
});
