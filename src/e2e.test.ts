import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { startServer, type TestServer } from "./testing/server";
import { promtool } from "./testing/tools";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ env: { HTTP_BODY_LIMIT_BYTES: "4096" } });
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** Bytes straight onto the socket, for requests fetch() refuses to send. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(text));
    let reply = "";
    socket.on("data", (chunk) => {
      reply += chunk.toString();
    });
    socket.on("end", () => resolve(reply));
    socket.on("error", reject);
    socket.setTimeout(5000, () => socket.destroy(new Error("raw request timed out")));
  });
}

const json = { "content-type": "application/json" };

describe("bad input over real HTTP", () => {
  test.each([
    ["a wrong content type", "POST", "/health", "<a/>", { "content-type": "application/xml" }, 415],
    ["an oversized body", "POST", "/health", JSON.stringify({ a: "x".repeat(10_000) }), json, 413],
    ["an unknown route", "GET", "/v1/nothing-here", undefined, {}, 404],
    ["an unknown method on a known route", "DELETE", "/health", undefined, {}, 405],
    ["a header over the limit", "GET", "/health", undefined, { "x-filler": "f".repeat(10_000) }, 431],
  ])("should answer %s with a problem", async (_, method, path, body, headers, status) => {
    const res = await server.fetch(path, { method, body, headers });
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const problem = await res.json();
    expect(problem.status).toBe(status);
    expect(problem.request_id).toBe(res.headers.get("x-request-id"));
  });

  test("should refuse a header block too big for the HTTP parser, and stay up", async () => {
    const res = await server.fetch("/health", { headers: { "x-filler": "f".repeat(40_000) } });
    expect(res.status).toBe(431);
    expect((await server.fetch("/health")).status).toBe(200);
  });

  test("a declared length far past every limit should get our problem+json 413, not a bare one", async () => {
    const port = Number(new URL(server.url).port);
    const reply = await rawRequest(
      port,
      "POST /v1/auth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n{}",
    );
    expect(reply).toStartWith("HTTP/1.1 413");
    expect(reply.toLowerCase()).toContain("x-request-id:");
    expect(reply.toLowerCase()).toContain("x-content-type-options: nosniff");
    expect(reply).toContain('"error":"invalid_request"');
    expect((await server.fetch("/health")).status).toBe(200);
  });

  test("should replace an invalid X-Request-ID", async () => {
    const res = await server.fetch("/health", { headers: { "x-request-id": "<script>alert(1)</script>" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).not.toContain("<");
  });

  test("should answer a malformed request line with 400 and stay up", async () => {
    const port = Number(new URL(server.url).port);
    const reply = await rawRequest(port, "GARBAGE\r\n\r\n");
    expect(reply).toStartWith("HTTP/1.1 400");
    expect((await server.fetch("/health")).status).toBe(200);
  });

  // An internal service name as the Host ("api", "wd") makes a URL too short for Elysia's default
  // path lookup, which then routed /health as "/" and /ab/metrics as /metrics.
  test.each([
    ["api", "/health", 200],
    ["x", "/metrics", 200],
    ["x", "/ab/metrics", 404],
    ["wd", "/zz/health", 404],
    ["x", "/v1/audit", 401],
  ])("should route by the path whatever the Host's length (Host: %s, %s)", async (host, path, status) => {
    const port = Number(new URL(server.url).port);
    const reply = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(reply).toStartWith(`HTTP/1.1 ${status}`);
  });

  test("should count every rejected request in /metrics, and the scrape should pass promtool", async () => {
    await Bun.sleep(20);
    const text = await (await server.fetch("/metrics")).text();
    for (const status of ["404", "405", "413", "415", "431"]) {
      expect(text).toMatch(new RegExp(`http_requests_total\\{[^}]*status="${status}"[^}]*\\} [1-9]`));
    }
    const check = await promtool(["check", "metrics"], text);
    expect(check.output).toBe("");
    expect(check.code).toBe(0);
  });

  test("should log one line per request and never the request body", async () => {
    await server.fetch("/health", { method: "POST", headers: json, body: '{"password":"hunter2"' });
    await Bun.sleep(50);
    const requests = server.logs.filter((line) => line.msg === "request");
    expect(requests.length).toBeGreaterThanOrEqual(8);
    expect(JSON.stringify(server.logs)).not.toContain("hunter2");
  });
});
