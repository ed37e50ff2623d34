import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { createApp } from "./app";
import { loadConfig } from "./config";
import { createLogger } from "./lib/logger";
import { openDeps, serve } from "./runtime";
import { startRedis } from "./testing/redis";
import { startServer } from "./testing/server";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function inProcess(env: Record<string, string> = {}, lines?: string[]) {
  const dataDir = mkdtempSync(join(tmpdir(), "warden-runtime-"));
  dirs.push(dataDir);
  const config = loadConfig({ HOST: "127.0.0.1", PORT: "0", DATA_DIR: dataDir, ...env });
  const sink = new Writable({
    write: (chunk, _enc, done) => {
      lines?.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  return openDeps(config, createLogger(lines ? "info" : "silent", sink));
}

describe("graceful shutdown", () => {
  test("should finish in-flight requests, refuse new ones, then close SQLite", async () => {
    const lines: string[] = [];
    const deps = await inProcess({}, lines);
    let reached: () => void = () => undefined;
    const handling = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const app = createApp(deps).get("/test/slow", async () => {
      reached();
      await Bun.sleep(400);
      return "finished";
    });
    const runtime = serve(app, deps);
    const base = runtime.url.href.replace(/\/$/, "");
    const inFlight = fetch(`${base}/test/slow`);
    await handling;
    const stopped = runtime.shutdown("test");
    await Bun.sleep(20);
    const refused = await fetch(`${base}/health`).then(
      () => "answered",
      () => "refused",
    );
    // Whoever still asks while requests drain hears that the service is going away.
    expect(await deps.readiness.check()).toMatchObject({
      status: "not_ready",
      detail: expect.stringContaining("shutting down"),
    });
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("finished");
    expect(refused).toBe("refused");
    await stopped;
    expect(() => deps.db.$client.query("SELECT 1").get()).toThrow();
    // Its access line was written before the logs were flushed for the exit.
    const logged = lines.map((line) => JSON.parse(line) as { route?: string; msg: string });
    const drained = logged.findIndex((line) => line.route === "/test/slow");
    expect(drained).toBeGreaterThan(-1);
    expect(drained).toBeLessThan(logged.findIndex((line) => line.msg === "shutdown complete"));
  });

  test("a request whose body was still coming when shutdown began is answered and logged", async () => {
    const lines: string[] = [];
    const deps = await inProcess({}, lines);
    const runtime = serve(createApp(deps), deps);
    const body = "grant_type=password&tenant=acme&username=nobody%40acme.test&password=xxxxxxxxxxxxxxxx";
    let answer = "";
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: runtime.server.port as number,
      socket: {
        data: (_socket, chunk) => {
          answer += chunk.toString();
        },
      },
    });
    socket.write(
      `POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nX-Request-ID: slow-body\r\n\r\n`,
    );
    socket.write(body.slice(0, 20));
    await Bun.sleep(100);
    const stopped = runtime.shutdown("test");
    for (let at = 20; at < body.length; at += 20) {
      await Bun.sleep(60);
      socket.write(body.slice(at, at + 20));
    }
    await stopped;
    socket.end();
    expect(answer).toStartWith("HTTP/1.1 400");
    const logged = lines.map((line) => JSON.parse(line) as { request_id?: string; msg: string });
    const drained = logged.findIndex((line) => line.request_id === "slow-body" && line.msg === "request");
    expect(drained).toBeGreaterThan(-1);
    expect(drained).toBeLessThan(logged.findIndex((line) => line.msg === "shutdown complete"));
  });

  test("with SHUTDOWN_DELAY_MS, should keep serving new connections, not ready, until the delay ends", async () => {
    const deps = await inProcess({ SHUTDOWN_DELAY_MS: "600" });
    const runtime = serve(createApp(deps), deps);
    const base = runtime.url.href.replace(/\/$/, "");
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    const started = performance.now();
    const stopped = runtime.shutdown("test");
    await Bun.sleep(100);
    // A new connection (no pooled one), as a load balancer's next probe or request would open.
    const ready = await fetch(`${base}/ready`, { keepalive: false, headers: { connection: "close" } });
    expect(ready.status).toBe(503);
    expect((await ready.json()).detail).toContain("shutting down");
    const health = await fetch(`${base}/health`, { keepalive: false, headers: { connection: "close" } });
    expect(health.status).toBe(200);
    await stopped;
    expect(performance.now() - started).toBeGreaterThanOrEqual(590);
    const refused = await fetch(`${base}/health`).then(
      () => "answered",
      () => "refused",
    );
    expect(refused).toBe("refused");
  });

  test("should cut requests still running when the grace period ends", async () => {
    const deps = await inProcess({ SHUTDOWN_GRACE_MS: "100" });
    const app = createApp(deps).get("/test/stuck", async () => {
      await Bun.sleep(5000);
      return "too late";
    });
    const runtime = serve(app, deps);
    const stuck = fetch(`${runtime.url.href}test/stuck`).then(
      (res) => res.status,
      () => "cut",
    );
    await Bun.sleep(50);
    const started = performance.now();
    await runtime.shutdown("test");
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await stuck).toBe("cut");
  });

  test.each(["SIGTERM", "SIGINT"] as const)("the process should exit 0 on %s after draining", async (signal) => {
    const server = await startServer();
    expect((await server.fetch("/health")).status).toBe(200);
    expect(await server.stop(signal)).toBe(0);
    const messages = server.logs.map((line) => line.msg);
    expect(messages).toContain("shutdown complete");
  });

  test("a second signal should exit at once while shutdown is still waiting", async () => {
    const redis = await startRedis();
    const blocker = new Redis(redis.url);
    try {
      const server = await startServer({ env: { REDIS_URL: redis.url } });
      const waitReady = async () => {
        for (let i = 0; i < 100; i++) {
          const body = await (await server.fetch("/ready")).json();
          if (body.checks.redis.status === "up") return;
          await Bun.sleep(20);
        }
        throw new Error("redis never came up for the server");
      };
      await waitReady();
      // Redis stops answering, so the shutdown's QUIT hangs (for up to a second).
      void blocker.call("DEBUG", "SLEEP", "3").catch(() => {});
      await Bun.sleep(50);
      server.proc.kill("SIGTERM");
      await Bun.sleep(150);
      expect(server.proc.exitCode).toBeNull();
      const started = performance.now();
      server.proc.kill("SIGTERM");
      expect(await server.stop()).toBe(130);
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      blocker.disconnect();
      await redis.stop();
    }
  });
});

describe("fatal errors", () => {
  for (const [kind, trigger] of [
    ["uncaught exception", "setTimeout(() => { throw new Error('worker bug'); }, 10);"],
    ["unhandled promise rejection", "Promise.reject(new Error('worker bug'));"],
  ] as const) {
    test(`an ${kind} should be logged as one JSON line, then exit 1`, async () => {
      const script = [
        `import { createLogger } from ${JSON.stringify(join(import.meta.dir, "lib/logger.ts"))};`,
        `import { exitOnFatalErrors } from ${JSON.stringify(join(import.meta.dir, "runtime.ts"))};`,
        `exitOnFatalErrors(createLogger("info"));`,
        trigger,
        "setTimeout(() => {}, 5000);",
      ].join("\n");
      const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
      const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
      expect(code).toBe(1);
      const line = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
      expect(line).toMatchObject({ level: "fatal", msg: `${kind}: exiting`, err: { message: "worker bug" } });
    });
  }
});
