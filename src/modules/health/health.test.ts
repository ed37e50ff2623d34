import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { waitFor } from "../../testing/ports";
import { startRedis, type TestRedis } from "../../testing/redis";

describe("health without Redis", () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(() => ctx.close());

  test("GET /health should report liveness and version", async () => {
    const res = await ctx.req("GET", "/health");
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.status).toBe("ok");
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  test("GET /ready should be ready with Redis disabled", async () => {
    const res = await ctx.req("GET", "/ready");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toMatchObject({
      status: "ready",
      checks: { sqlite: { status: "up" }, redis: { status: "disabled" } },
    });
  });

  test("GET /ready should be 503 naming SQLite when the database refuses writes", async () => {
    ctx.deps.db.$client.run("PRAGMA query_only = ON");
    try {
      const res = await ctx.req("GET", "/ready");
      expect(res.status).toBe(503);
      const body = await res.json();
      expect(body.status).toBe("not_ready");
      expect(body.checks.sqlite.status).toBe("down");
      expect(body.checks.sqlite.detail).toContain("sqlite not writable");
    } finally {
      ctx.deps.db.$client.run("PRAGMA query_only = OFF");
    }
    expect((await ctx.req("GET", "/ready")).status).toBe(200);
  });
});

describe("health with Redis", () => {
  let redis: TestRedis;
  let ctx: TestContext;
  beforeAll(async () => {
    redis = await startRedis();
    ctx = await createTestContext({ REDIS_URL: redis.url });
    await waitFor(() => ctx.deps.redis?.status === "ready", 5000, "redis client ready");
  });
  afterAll(async () => {
    await ctx.close();
    await redis.stop();
  });

  test("should be ready with Redis up", async () => {
    const body = await (await ctx.req("GET", "/ready")).json();
    expect(body).toMatchObject({ status: "ready", checks: { redis: { status: "up" } } });
  });

  test("should stay 200 but degraded while Redis is down, and recover when it returns", async () => {
    await redis.kill();
    await waitFor(() => ctx.deps.redis?.status !== "ready", 5000, "client to notice");
    const down = await ctx.req("GET", "/ready");
    expect(down.status).toBe(200);
    const body = await down.json();
    expect(body.status).toBe("degraded");
    expect(body.checks.redis.status).toBe("down");
    expect(body.checks.sqlite.status).toBe("up");

    await redis.start();
    await waitFor(() => ctx.deps.redis?.status === "ready", 10_000, "client to reconnect");
    expect(await (await ctx.req("GET", "/ready")).json()).toMatchObject({ status: "ready" });
  });
});
