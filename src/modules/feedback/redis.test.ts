import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import type { Worker } from "../../lib/worker";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";
import { waitFor } from "../../testing/ports";
import { startRedis, type TestRedis } from "../../testing/redis";
import { startFeedbackWorker } from "./worker";

const TTL_SECONDS = 600;

async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}

describe("feedback in Redis", () => {
  let server: TestRedis;
  let ctx: TestContext;
  let viewer: LoggedIn;
  let probe: Redis;
  let worker: Worker;
  beforeAll(async () => {
    server = await startRedis();
    ctx = await createTestContext({ REDIS_URL: server.url, FEEDBACK_TTL_SECONDS: String(TTL_SECONDS) });
    await waitFor(() => ctx.deps.redis?.status === "ready", 5000, "redis client ready");
    worker = startFeedbackWorker(ctx.deps.feedback, ctx.deps.redis, ctx.deps.log);
    viewer = await seedAndLogin(ctx, "fb-redis", "viewer");
    probe = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await worker.stop();
    probe.disconnect();
    await ctx.close();
    await server.stop();
  });

  const post = (body: Record<string, unknown>) =>
    ctx.req("POST", "/v1/feedback", {
      body: { subject_type: "alert", verdict: "useful", ...body },
      headers: viewer.auth,
    });

  test("should store the entry and its indexes under tenant-scoped keys with the TTL", async () => {
    const res = await post({ subject_id: "disk-full", verdict: "false_positive" });
    expect(res.status).toBe(202);
    const { id } = await res.json();
    const item = `warden:fb:{fb-redis}:item:${id}`;
    expect(JSON.parse((await probe.get(item)) ?? "{}")).toMatchObject({ id, subject_id: "disk-full" });
    for (const key of [
      item,
      "warden:fb:{fb-redis}:on:alert:disk-full",
      "warden:fb:{fb-redis}:on",
      "warden:fb:{fb-redis}:verdict:false_positive",
    ]) {
      const ttl = await probe.pttl(key);
      expect(ttl).toBeGreaterThan((TTL_SECONDS - 5) * 1000);
      expect(ttl).toBeLessThanOrEqual(TTL_SECONDS * 1000);
    }
    const list = await (await ctx.req("GET", "/v1/feedback?subject_id=disk-full", { headers: viewer.auth })).json();
    expect(list.items.map((i: { id: string }) => i.id)).toEqual([id]);
    const summary = await (await ctx.req("GET", "/v1/feedback/summary", { headers: viewer.auth })).json();
    expect(summary.subjects).toContainEqual({
      subject_type: "alert",
      subject_id: "disk-full",
      total: 1,
      by_verdict: { false_positive: 1 },
      false_positive_rate: 1,
    });
  });

  test("should write entries accepted together in one script call per tenant and 128 entries, each as if alone", async () => {
    await probe.config("RESETSTAT");
    // More than one call's worth (128) for one tenant, two tenants, subjects repeated within the burst.
    const burst = Array.from({ length: 300 }, (_, i) => ({
      tid: i % 3 === 0 ? "fb-burst-b" : "fb-burst-a",
      subject_id: `burst-${i % 7}`,
      verdict: i % 2 === 0 ? ("false_positive" as const) : ("useful" as const),
    }));
    const accepted = await Promise.all(
      burst.map(({ tid, subject_id, verdict }) =>
        ctx.deps.feedback.accept({ tid, sub: "u-burst" }, { subject_type: "alert", subject_id, verdict }),
      ),
    );
    expect(ctx.deps.feedback.spool?.depth).toBe(0);
    // Tenant a: 200 entries (128 + 72), tenant b: 100.
    expect(await probe.info("commandstats")).toMatch(/cmdstat_evalsha:calls=3,/);

    const entries = burst.map((entry, i) => ({ ...entry, id: accepted[i]?.id }));
    const pipeline = probe.pipeline();
    for (const { tid, id } of entries) pipeline.pttl(`warden:fb:{${tid}}:item:${id}`);
    for (const [error, ttl] of (await pipeline.exec()) ?? []) {
      expect(error).toBeNull();
      expect(Math.abs(TTL_SECONDS * 1000 - Number(ttl))).toBeLessThanOrEqual(5000);
    }
    for (const tenant of ["fb-burst-a", "fb-burst-b"]) {
      for (let s = 0; s < 7; s++) {
        const key = `warden:fb:{${tenant}}:on:alert:burst-${s}`;
        const members = entries
          .filter(({ tid, subject_id }) => tid === tenant && subject_id === `burst-${s}`)
          .map(({ id, verdict }) => `${id}:${verdict}`);
        expect((await probe.zrange(key, "0", "-1")).sort()).toEqual(members.sort());
        expect(Math.abs(TTL_SECONDS * 1000 - (await probe.pttl(key)))).toBeLessThanOrEqual(5000);
      }
      const subjects = `warden:fb:{${tenant}}:on`;
      expect((await probe.zrange(subjects, "0", "-1")).sort()).toEqual(
        Array.from({ length: 7 }, (_, s) => `alert:burst-${s}`),
      );
      expect(Math.abs(TTL_SECONDS * 1000 - (await probe.pttl(subjects)))).toBeLessThanOrEqual(5000);
    }
    // Each verdict index holds exactly that verdict's ids, scored by their expiry, with the TTL.
    for (const tenant of ["fb-burst-a", "fb-burst-b"]) {
      for (const verdict of ["false_positive", "useful"] as const) {
        const key = `warden:fb:{${tenant}}:verdict:${verdict}`;
        const ids = entries.filter((entry) => entry.tid === tenant && entry.verdict === verdict).map(({ id }) => id);
        const scored = await probe.zrange(key, "0", "-1", "WITHSCORES");
        const members = scored.filter((_, i) => i % 2 === 0);
        expect(members.sort()).toEqual((ids as string[]).sort());
        const expiry = Date.parse(accepted[0]?.expires_at ?? "");
        for (const score of scored.filter((_, i) => i % 2 === 1)) expect(Number(score)).toBe(expiry);
        expect(Math.abs(TTL_SECONDS * 1000 - (await probe.pttl(key)))).toBeLessThanOrEqual(5000);
      }
    }
    const stored = JSON.parse((await probe.get(`warden:fb:{fb-burst-b}:item:${entries[0]?.id}`)) ?? "{}");
    expect(stored).toEqual({
      id: entries[0]?.id,
      subject_type: "alert",
      subject_id: "burst-0",
      verdict: "false_positive",
      author: "u-burst",
      created_at: new Date(ctx.clock.now()).toISOString(),
      expires_at: accepted[0]?.expires_at,
    });
  });

  test("should load the script again into a Redis that forgot it, without spooling", async () => {
    await probe.script("FLUSH");
    const res = await post({ subject_id: "after-flush" });
    expect(res.status).toBe(202);
    const { id } = await res.json();
    expect(ctx.deps.feedback.spool?.depth).toBe(0);
    expect(await probe.exists(`warden:fb:{fb-redis}:item:${id}`)).toBe(1);
    expect(await probe.zrange("warden:fb:{fb-redis}:on:alert:after-flush", "0", "-1")).toEqual([`${id}:useful`]);
  });

  test("should spool what a hung Redis does not take within 250 ms, and land each entry once", async () => {
    // DEBUG SLEEP holds the whole server, so the probe waits for it on a connection of its own.
    const sleeper = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      // Connected first: a lazy connect took most of the 50 ms below on a loaded machine.
      await sleeper.ping();
      const sleeping = sleeper.call("DEBUG", "SLEEP", "0.8");
      await Bun.sleep(50);
      const started = performance.now();
      const answers = await Promise.all([1, 2, 3].map((rating) => post({ subject_id: "hung", rating })));
      const waited = performance.now() - started;
      for (const res of answers) expect(res.status).toBe(202);
      expect(waited).toBeGreaterThanOrEqual(240);
      expect(waited).toBeLessThan(700);
      expect(ctx.deps.feedback.spool?.depth).toBe(3);
      await sleeping;
      await waitFor(() => ctx.deps.feedback.spool?.depth === 0, 15_000, "the spool to drain");
      const ids = await Promise.all(answers.map(async (res) => (await res.json()).id as string));
      expect((await probe.zrange("warden:fb:{fb-redis}:on:alert:hung", "0", "-1")).sort()).toEqual(
        ids.map((id) => `${id}:useful`).sort(),
      );
    } finally {
      sleeper.disconnect();
    }
  });

  test("reads should answer 503 when a hung Redis does not answer within 2 s, not hold the caller", async () => {
    const sleeper = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      // Connected first: a lazy connect took most of the 50 ms below on a loaded machine.
      await sleeper.ping();
      const sleeping = sleeper.call("DEBUG", "SLEEP", "4");
      await Bun.sleep(50);
      const started = performance.now();
      const answers = await Promise.all([
        ctx.req("GET", "/v1/feedback?subject_id=hung", { headers: viewer.auth }),
        ctx.req("GET", "/v1/feedback/summary", { headers: viewer.auth }),
      ]);
      const waited = performance.now() - started;
      for (const res of answers) {
        expect(res.status).toBe(503);
        expect(res.headers.get("retry-after")).toBe("5");
        expect((await res.json()).type).toBe("urn:warden:problem:feedback-unavailable");
      }
      expect(waited).toBeGreaterThanOrEqual(1900);
      expect(waited).toBeLessThan(3800);
      await sleeping;
      // Answering again, the same reads work.
      expect((await ctx.req("GET", "/v1/feedback/summary", { headers: viewer.auth })).status).toBe(200);
    } finally {
      sleeper.disconnect();
    }
  });

  test("reads that Redis answers with an error are a 503 too, logged without a stack", async () => {
    const key = "warden:fb:{fb-redis}:verdict:useful";
    const saved = await probe.dumpBuffer(key);
    await probe.set(key, "not a sorted set");
    try {
      const logged = ctx.logs.length;
      const res = await ctx.req("GET", "/v1/feedback/summary", { headers: viewer.auth });
      expect(res.status).toBe(503);
      expect((await res.json()).type).toBe("urn:warden:problem:feedback-unavailable");
      const lines = ctx.logs.slice(logged);
      expect(lines.some((line) => line.msg === "feedback read: redis did not answer")).toBe(true);
      expect(lines.some((line) => line.msg === "unhandled error")).toBe(false);
    } finally {
      await probe.del(key);
      if (saved) await probe.restore(key, 0, saved);
    }
    expect((await ctx.req("GET", "/v1/feedback/summary", { headers: viewer.auth })).status).toBe(200);
  });

  test("should leave no key behind once every entry has expired", async () => {
    const shortCtx = await createTestContext({ REDIS_URL: server.url, FEEDBACK_TTL_SECONDS: "1" });
    try {
      await waitFor(() => shortCtx.deps.redis?.status === "ready", 5000, "redis client ready");
      const user = await seedAndLogin(shortCtx, "fb-orphans", "viewer");
      for (const subject of ["a", "b", "c"]) {
        for (const verdict of ["useful", "false_positive"]) {
          const res = await shortCtx.req("POST", "/v1/feedback", {
            body: { subject_type: "incident", subject_id: subject, verdict },
            headers: user.auth,
          });
          expect(res.status).toBe(202);
        }
      }
      // Six entries, three subject indexes, the tenant's subject index, two verdict indexes.
      expect((await scanAll(probe, "warden:fb:{fb-orphans}:*")).length).toBe(6 + 3 + 1 + 2);
      await Bun.sleep(1300);
      expect(await scanAll(probe, "warden:fb:{fb-orphans}:*")).toEqual([]);
    } finally {
      await shortCtx.close();
    }
  });

  test("should spool 1 000 items while Redis is down and replay them all, once, with their TTL", async () => {
    await server.kill();
    await waitFor(() => ctx.deps.redis?.status !== "ready", 5000, "client to notice");
    const ids: string[] = [];
    for (let chunk = 0; chunk < 10; chunk++) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) => post({ subject_id: "outage", rating: ((chunk + i) % 5) + 1 })),
      );
      for (const res of answers) {
        expect(res.status).toBe(202);
        ids.push((await res.json()).id);
      }
    }
    expect(ctx.deps.feedback.spool?.depth).toBe(1000);
    const ready = await (await ctx.req("GET", "/ready")).json();
    expect(ready.status).toBe("degraded");
    // Why Redis is out first, then what waits for it.
    expect(ready.checks.redis.detail).toEndWith("; feedback spooled, not yet stored in redis: 1000 entries");
    const read = await ctx.req("GET", "/v1/feedback?subject_id=outage", { headers: viewer.auth });
    expect(read.status).toBe(503);
    expect(await (await ctx.req("GET", "/metrics")).text()).toContain("feedback_spool_depth 1000");

    await server.start();
    await waitFor(() => ctx.deps.feedback.spool?.depth === 0, 15_000, "the spool to drain");
    const expectedTtl = TTL_SECONDS * 1000;
    const keys = await scanAll(probe, "warden:fb:{fb-redis}:item:*");
    expect(new Set(keys).size).toBe(1000);
    const pipeline = probe.pipeline();
    for (const id of ids) pipeline.pttl(`warden:fb:{fb-redis}:item:${id}`);
    for (const [error, ttl] of (await pipeline.exec()) ?? []) {
      expect(error).toBeNull();
      expect(Math.abs(expectedTtl - Number(ttl))).toBeLessThanOrEqual(5000);
    }
    expect(await probe.zcard("warden:fb:{fb-redis}:on:alert:outage")).toBe(1000);
    const listed = new Set<string>();
    let cursor = "";
    do {
      const page = await (
        await ctx.req("GET", `/v1/feedback?subject_id=outage&limit=200${cursor && `&cursor=${cursor}`}`, {
          headers: viewer.auth,
        })
      ).json();
      for (const item of page.items) listed.add(item.id);
      cursor = page.next_cursor ?? "";
    } while (cursor);
    expect([...listed].sort()).toEqual([...ids].sort());
    expect(await (await ctx.req("GET", "/metrics")).text()).toContain("feedback_spool_depth 0");
  });

  test("should drop spooled entries that expired before Redis returned", async () => {
    await server.kill();
    await waitFor(() => ctx.deps.redis?.status !== "ready", 5000, "client to notice");
    const stale = await (await post({ subject_id: "stale" })).json();
    ctx.clock.advance(TTL_SECONDS * 1000 - 1000);
    const fresh = await (await post({ subject_id: "stale" })).json();
    ctx.clock.advance(2000);
    expect(ctx.deps.feedback.spool?.depth).toBe(2);
    await server.start();
    await waitFor(() => ctx.deps.feedback.spool?.depth === 0, 15_000, "the spool to drain");
    expect(await probe.exists(`warden:fb:{fb-redis}:item:${stale.id}`)).toBe(0);
    expect(await probe.exists(`warden:fb:{fb-redis}:item:${fresh.id}`)).toBe(1);
    const ttl = await probe.pttl(`warden:fb:{fb-redis}:item:${fresh.id}`);
    expect(Math.abs(ttl - (TTL_SECONDS * 1000 - 2000))).toBeLessThanOrEqual(5000);
  });

  test("should replay what another process on the database spooled and stopped with, and queue behind it", async () => {
    // As FeedbackSpool.add writes it: the other process accepted it (202) while its Redis was away.
    const orphan = {
      id: "01KFOREIGNSP00LED0000000AA",
      subject_type: "alert",
      subject_id: "orphaned",
      verdict: "useful",
    };
    const expiresAt = ctx.clock.now() + TTL_SECONDS * 1000;
    ctx.deps.db.$client
      .prepare("INSERT INTO feedback_spool (tenant_id, id, body, expires_at) VALUES (?, ?, ?, ?)")
      .run(
        "fb-redis",
        orphan.id,
        JSON.stringify({ ...orphan, created_at: new Date(ctx.clock.now()).toISOString() }),
        expiresAt,
      );
    // The replay deletes its rows once Redis has acknowledged them, so the item shows before the rows go.
    const spooledRows = () => ctx.deps.db.$client.query("SELECT count(*) AS n FROM feedback_spool").get();
    await waitFor(() => (spooledRows() as { n: number }).n === 0, 5000, "the replay");
    expect(await probe.exists(`warden:fb:{fb-redis}:item:${orphan.id}`)).toBe(1);
    expect(ctx.deps.feedback.spool?.depth).toBe(0);
  });

  test("a Redis that answers PING but refuses writes should leave /ready degraded until the spool drains", async () => {
    const ready = async () => {
      ctx.clock.advance(1001); // past the one-second reuse of a check
      return (await ctx.req("GET", "/ready")).json() as Promise<{
        status: string;
        checks: { redis: { detail?: string } };
      }>;
    };
    expect((await ready()).status).toBe("ready");
    await probe.config("SET", "maxmemory", "1");
    try {
      const res = await post({ subject_id: "refused-writes" });
      expect(res.status).toBe(202);
      const degraded = await ready();
      expect(degraded.status).toBe("degraded");
      expect(degraded.checks.redis.detail).toContain("spooled");
    } finally {
      await probe.config("SET", "maxmemory", "0");
    }
    await waitFor(() => ctx.deps.feedback.spool?.depth === 0, 10_000, "the spool to drain");
    expect((await ready()).status).toBe("ready");
  });

  test("shutdown should not wait for a hung Redis to take the spool", async () => {
    const own = startFeedbackWorker(ctx.deps.feedback, ctx.deps.redis, ctx.deps.log);
    const sleeper = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      // Connected first: a lazy connect took most of the 50 ms below on a loaded machine.
      await sleeper.ping();
      const sleeping = sleeper.call("DEBUG", "SLEEP", "6");
      await Bun.sleep(50);
      const res = await post({ subject_id: "hung-at-shutdown" });
      expect(res.status).toBe(202);
      expect(ctx.deps.feedback.spool?.depth).toBe(1);
      await Bun.sleep(1200); // a replay tick has begun, and waits on Redis
      const started = performance.now();
      await own.stop();
      expect(performance.now() - started).toBeLessThan(3000);
      await sleeping;
      await waitFor(() => ctx.deps.feedback.spool?.depth === 0, 10_000, "the spool to drain");
    } finally {
      sleeper.disconnect();
    }
  }, 20_000);
});
