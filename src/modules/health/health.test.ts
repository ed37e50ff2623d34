import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { waitFor } from "../../testing/ports";
import { startRedis, type TestRedis } from "../../testing/redis";
import { READINESS_REUSE_MS } from "./service";

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
    ctx.clock.advance(READINESS_REUSE_MS);
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
    ctx.clock.advance(READINESS_REUSE_MS);
    expect((await ctx.req("GET", "/ready")).status).toBe(200);
  });

  test("GET /ready should answer a flood of probes from one check a second", async () => {
    ctx.clock.advance(READINESS_REUSE_MS);
    const writes = () => (ctx.deps.db.$client.query("SELECT total_changes() AS n").get() as { n: number }).n;
    const before = writes();
    const answers = await Promise.all(Array.from({ length: 20 }, () => ctx.req("GET", "/ready")));
    expect(answers.map((res) => res.status)).toEqual(Array(20).fill(200));
    expect(writes() - before).toBe(1);
    // Within the second a change is not seen yet; after it, it is.
    ctx.deps.db.$client.run("PRAGMA query_only = ON");
    try {
      ctx.clock.advance(READINESS_REUSE_MS - 1);
      expect((await ctx.req("GET", "/ready")).status).toBe(200);
      ctx.clock.advance(1);
      expect((await ctx.req("GET", "/ready")).status).toBe(503);
    } finally {
      ctx.deps.db.$client.run("PRAGMA query_only = OFF");
    }
  });

  test("GET /ready should be 503 from the moment shutdown begins, saying so", async () => {
    ctx.clock.advance(READINESS_REUSE_MS);
    expect((await ctx.req("GET", "/ready")).status).toBe(200);
    ctx.deps.readiness.shuttingDown();
    const res = await ctx.req("GET", "/ready");
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      status: "not_ready",
      detail: "shutting down: take this instance out of rotation",
      checks: { sqlite: { status: "up" } },
    });
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
    ctx.clock.advance(READINESS_REUSE_MS);
    const down = await ctx.req("GET", "/ready");
    expect(down.status).toBe(200);
    const body = await down.json();
    expect(body.status).toBe("degraded");
    expect(body.checks.redis.status).toBe("down");
    expect(body.checks.sqlite.status).toBe("up");

    await redis.start();
    await waitFor(() => ctx.deps.redis?.status === "ready", 10_000, "client to reconnect");
    ctx.clock.advance(READINESS_REUSE_MS);
    expect(await (await ctx.req("GET", "/ready")).json()).toMatchObject({ status: "ready" });
  });
});
