import { afterAll, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { t } from "elysia";
import { DATABASE_FILE } from "../../db/client";
import { READINESS_REUSE_MS } from "../modules/health/service";
import { createTestContext } from "../testing/app";
import { seedAndLogin } from "../testing/identity";
import { promtool } from "../testing/tools";

const ctx = await createTestContext();
/** What createApp serves, before the route this file adds. */
const served = ctx.app.routes.map(({ method, path }) => ({ method, path }));
const app = ctx.app.post("/test/json", ({ body }) => body, { body: t.Object({ a: t.String() }) });
afterAll(() => ctx.close());

async function scrape(): Promise<string> {
  // Requests are recorded after their response is sent.
  await Bun.sleep(5);
  const res = await ctx.req("GET", "/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  return res.text();
}

function sample(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text
    .split("\n")
    .find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && wanted.every((pair) => l.includes(pair)));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

describe("metrics", () => {
  test("every webhook attempt outcome has its series from the start, at 0", async () => {
    const text = await scrape();
    for (const outcome of ["delivered", "retry", "dead", "disabled"]) {
      expect(text).toContain(`webhook_delivery_attempts_total{outcome="${outcome}"} 0`);
    }
  });

  test("every route's 5xx series exist from the start, at 0", async () => {
    // Before any other test sends a request: what a fresh instance exports.
    const text = await scrape();
    const zeroed = (method: string, route: string, status: string) =>
      text.includes(`http_requests_total{method="${method}",route="${route}",status="${status}"} 0\n`);
    for (const route of served) {
      expect(zeroed(route.method, route.path, "500"), `${route.method} ${route.path}`).toBe(true);
      expect(zeroed(route.method, route.path, "503"), `${route.method} ${route.path}`).toBe(true);
    }
    expect(zeroed("GET", "/v1/feedback", "503")).toBe(true);
    expect(zeroed("POST", "/v1/auth/token", "500")).toBe(true);
    expect(text).not.toContain('route="unmatched",status="500"');
  });

  test("should count requests by route template, not raw path", async () => {
    await ctx.req("GET", "/swagger/assets/init.js");
    await ctx.req("GET", "/swagger/assets/swagger-ui.css");
    const text = await scrape();
    expect(sample(text, "http_requests_total", { route: "/swagger/assets/:file", status: "200" })).toBe(2);
    expect(text).not.toContain('route="/swagger/assets/init.js"');
  });

  test("should put every unmatched path under one label value", async () => {
    for (let i = 0; i < 20; i++) await ctx.req("GET", `/scan/${i}/admin.php`);
    const text = await scrape();
    expect(sample(text, "http_requests_total", { route: "unmatched", status: "404" })).toBe(20);
    expect(text).not.toContain("admin.php");
  });

  test("should fold unknown methods into OTHER", async () => {
    await ctx.req("PROPFIND", "/health");
    expect(sample(await scrape(), "http_requests_total", { method: "OTHER" })).toBeGreaterThanOrEqual(1);
  });

  test("should count bad input by status", async () => {
    const malformed = { method: "POST", body: "{oops", headers: { "content-type": "application/json" } };
    expect((await app.handle(new Request("http://localhost/test/json", malformed))).status).toBe(400);
    await ctx.req("POST", "/health", { body: "{oops", headers: { "content-type": "text/plain" } });
    const text = await scrape();
    expect(sample(text, "http_requests_total", { route: "/test/json", status: "400" })).toBe(1);
    expect(sample(text, "http_requests_total", { status: "415" })).toBe(1);
  });

  test("should expose the latency histogram with the SLO buckets, and process metrics", async () => {
    const text = await scrape();
    for (const le of ["0.005", "0.01", "0.025", "0.05", "0.12", "0.25", "0.5", "1"]) {
      expect(text).toContain(
        `http_request_duration_seconds_bucket{le="${le}",method="GET",route="/swagger/assets/:file"}`,
      );
    }
    for (const name of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "process_start_time_seconds",
      // WardenFileDescriptorsRunningOut divides one by the other.
      "process_open_fds",
      "process_max_fds",
      "nodejs_eventloop_lag_seconds",
      "nodejs_heap_size_used_bytes",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    // Bun walks the heap for these: tens of milliseconds a scrape with the event loop blocked.
    expect(text).not.toContain("nodejs_heap_space_size");
  });

  test("should report readiness at scrape time, as /ready would answer it", async () => {
    expect(sample(await scrape(), "warden_ready", {})).toBe(1);
    ctx.deps.db.$client.run("PRAGMA query_only = ON");
    // A check answers for a second (src/modules/health/service.ts).
    ctx.clock.advance(READINESS_REUSE_MS);
    try {
      expect(sample(await scrape(), "warden_ready", {})).toBe(0);
    } finally {
      ctx.deps.db.$client.run("PRAGMA query_only = OFF");
    }
    ctx.clock.advance(READINESS_REUSE_MS);
    expect(sample(await scrape(), "warden_ready", {})).toBe(1);
  });

  test("should report DATA_DIR's disk and the database size", async () => {
    const text = await scrape();
    const free = sample(text, "sqlite_disk_free_bytes", {});
    const total = sample(text, "sqlite_disk_total_bytes", {});
    expect(free).toBeGreaterThan(0);
    expect(total).toBeGreaterThanOrEqual(free);
    const { size } = statSync(join(ctx.deps.config.dataDir, DATABASE_FILE));
    expect(sample(text, "sqlite_database_bytes", {})).toBeGreaterThanOrEqual(size);
  });

  test("should report no audit verdict before a verification, then the verdict", async () => {
    const before = await scrape();
    expect(sample(before, "audit_chain_last_verify_timestamp_seconds", {})).toBe(0);
    const admin = await seedAndLogin(ctx, "acme", "admin");
    expect((await ctx.req("GET", "/v1/audit/verify", { headers: admin.auth })).status).toBe(200);
    const after = await scrape();
    expect(sample(after, "audit_chain_verified", {})).toBe(1);
    expect(sample(after, "audit_chain_last_verify_timestamp_seconds", {})).toBe(ctx.clock.now() / 1000);
  });

  test("should count the revocations held in memory, by kind", async () => {
    const before = await scrape();
    for (const kind of ["token", "session", "user", "tenant"])
      expect(before).toMatch(new RegExp(`revocation_cache_entries\\{kind="${kind}"\\} \\d+`));
    const admin = await seedAndLogin(ctx, "acme", "admin");
    for (const jti of ["metrics-1", "metrics-2"])
      expect((await ctx.req("POST", "/v1/admin/revocations", { headers: admin.auth, body: { jti } })).status).toBe(201);
    const after = await scrape();
    expect(sample(after, "revocation_cache_entries", { kind: "token" })).toBe(
      sample(before, "revocation_cache_entries", { kind: "token" }) + 2,
    );
    expect(sample(after, "revocation_cache_entries", { kind: "token" })).toBe(
      ctx.deps.security.revocation.sizes().token,
    );
  });

  test("should pass promtool check metrics", async () => {
    const result = await promtool(["check", "metrics"], await scrape());
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  });
});
