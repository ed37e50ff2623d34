import { afterAll, describe, expect, test } from "bun:test";
import { createTestContext } from "../testing/app";
import { DEFAULT_CSP } from "./security-headers";

const ctx = await createTestContext({ CORS_ORIGINS: "https://app.example.com" });
const app = ctx.app.get("/test/boom", () => {
  throw new Error("boom");
});
afterAll(() => ctx.close());

const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
  app.handle(new Request(`http://localhost${path}`, { method, headers }));

const EXPECTED = {
  "strict-transport-security": "max-age=63072000; includeSubDomains",
  "content-security-policy": DEFAULT_CSP,
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cache-control": "no-store",
};

describe("security headers", () => {
  test.each([
    ["a success", "/health", 200, "GET"],
    ["a 404", "/nope", 404, "GET"],
    ["a 405", "/metrics", 405, "DELETE"],
    ["a 500", "/test/boom", 500, "GET"],
  ] as const)("should be on %s", async (_, path, status, method) => {
    const res = await get(path, {}, method);
    expect(res.status).toBe(status);
    for (const [name, value] of Object.entries(EXPECTED)) expect(res.headers.get(name)).toBe(value);
  });

  test("API answers are never cached; the JWKS and static assets say how long they may be", async () => {
    expect((await get("/v1/auth/me")).headers.get("cache-control")).toBe("no-store");
    expect((await get("/.well-known/jwks.json")).headers.get("cache-control")).toBe("public, max-age=300");
    expect((await get("/swagger/assets/swagger-ui.css")).headers.get("cache-control")).toBe("public, max-age=3600");
  });

  test("should relax the CSP only on the Swagger page", async () => {
    const page = await get("/swagger");
    expect(page.headers.get("content-security-policy")).toContain("style-src 'self' 'unsafe-inline'");
    expect(page.headers.get("content-security-policy")).not.toContain("script-src");
    expect((await get("/health")).headers.get("content-security-policy")).toBe(DEFAULT_CSP);
  });
});

describe("CORS", () => {
  test("should allow a listed origin", async () => {
    const res = await get("/health", { origin: "https://app.example.com" });
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(res.headers.get("vary")).toBe("Origin");
    expect(res.headers.get("access-control-expose-headers")).toContain("x-request-id");
  });

  test("should say nothing to an unlisted origin", async () => {
    const res = await get("/health", { origin: "https://evil.example.com" });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  test("should answer a preflight from a listed origin", async () => {
    const res = await get(
      "/health",
      { origin: "https://app.example.com", "access-control-request-method": "POST" },
      "OPTIONS",
    );
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
  });

  test("should not answer a preflight from an unlisted origin", async () => {
    const res = await get(
      "/health",
      { origin: "https://evil.example.com", "access-control-request-method": "POST" },
      "OPTIONS",
    );
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-methods")).toBeNull();
  });
});
