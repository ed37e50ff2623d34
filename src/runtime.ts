import { join } from "node:path";
import type { Server } from "bun";
import type { Redis } from "ioredis";
import { startCheckpointer } from "../db/checkpointer";
import { DATABASE_FILE, openDatabase } from "../db/client";
import { startStatistics } from "../db/statistics";
import { type AppDeps, appFetch, createApp, VERSION } from "./app";
import type { Config } from "./config";
import { type Clock, systemClock } from "./lib/clock";
import { flushLogger, type Logger } from "./lib/logger";
import { TrafficGauge } from "./lib/traffic-gauge";
import type { Worker } from "./lib/worker";
import { startAuditRetention } from "./modules/audit/retention";
import { ChainVerifier, DEFAULT_VERIFIER_OPTIONS, startChainVerification } from "./modules/audit/verifier";
import { openSecurity, startSecurityWorkers } from "./modules/auth/setup";
import { FeedbackService } from "./modules/feedback/service";
import { startFeedbackWorker } from "./modules/feedback/worker";
import { ReadinessProbe } from "./modules/health/service";
import { storageUsage } from "./modules/health/storage";
import { startNotificationRetention } from "./modules/notifications/retention";
import { startRevocationBroadcast } from "./modules/revocation/broadcast";
import { openWebhooks } from "./modules/webhooks/setup";
import { behindProxies } from "./plugins/client-address";
import type { LeanHost } from "./plugins/lean-routes";
import { createMetrics, type Metrics } from "./plugins/metrics";
import { RateLimiter } from "./plugins/rate-limiter";
import { createRedis } from "./redis";

export type { Worker } from "./lib/worker";

export interface Runtime {
  readonly server: Server<unknown>;
  readonly url: URL;
  readonly deps: AppDeps;
  shutdown(reason: string): Promise<void>;
}

const REDIS_QUIT_TIMEOUT_MS = 1000;
/** Request rate from which the server counts as busy and background delivery steps back. */
const BUSY_REQUESTS_PER_SECOND = 2000;

/** Opens SQLite (migrating it), Redis and the key ring: everything the app is built from. Nothing listens yet. */
export async function openDeps(config: Config, log: Logger, clock: Clock = systemClock): Promise<AppDeps> {
  const db = openDatabase(config.dataDir);
  const redis = config.redisUrl ? createRedis(config.redisUrl, log) : undefined;
  // A Redis that is down at boot must not stop the service: it runs degraded and reconnects.
  // The client logs why it could not connect (connect() rejects with no cause).
  redis?.connect().catch(() => {});
  const security = await openSecurity({ config, db, clock });
  const readiness = new ReadinessProbe({ db, redis, clock, spooledFeedback: () => feedback.spool?.depth ?? 0 });
  const metrics = createMetrics({
    ready: async () => (await readiness.check()).status !== "not_ready",
    storage: () => storageUsage(config.dataDir),
  });
  trackRedis(redis, metrics);
  metrics.sources.revocationCache = () => security.revocation.sizes();
  const auditVerifier = new ChainVerifier(db.$client, security.auditKey, metrics, clock);
  const webhooks = openWebhooks({ config, db, clock, security, metrics, log, version: VERSION });
  const feedback = new FeedbackService({
    db,
    redis,
    clock,
    log,
    metrics,
    ttlSeconds: config.feedbackTtlSeconds,
    maxPerSubject: config.feedbackMaxPerSubject,
  });
  const rateLimiter = config.rateLimit.enabled
    ? new RateLimiter(config.rateLimit, redis, clock, metrics, log)
    : undefined;
  readiness.onRedisChecked = (answered, latencyMs) => {
    metrics.redisUp.set(answered ? 1 : 0);
    if (answered) rateLimiter?.redisAnswered(latencyMs);
  };
  return {
    config,
    db,
    redis,
    log,
    clock,
    metrics,
    readiness,
    security,
    auditVerifier,
    webhooks,
    feedback,
    rateLimiter,
  };
}

/** `redis_up` follows the client's connection; without REDIS_URL the gauge is not exported at all. */
function trackRedis(redis: Redis | undefined, metrics: Metrics): void {
  if (!redis) {
    metrics.registry.removeSingleMetric("redis_up");
    return;
  }
  metrics.redisUp.set(0);
  redis.on("ready", () => metrics.redisUp.set(1));
  redis.on("close", () => metrics.redisUp.set(0));
}

/**
 * Serves `app` and owns the shutdown order: not ready (still serving for SHUTDOWN_DELAY_MS) → stop
 * accepting → drain in-flight requests (bounded by SHUTDOWN_GRACE_MS) → stop workers → close
 * Redis → close SQLite → flush logs.
 */
export function serve(app: LeanHost, deps: AppDeps): Runtime {
  const { config, log, db, redis } = deps;
  const traffic = new TrafficGauge(BUSY_REQUESTS_PER_SECOND);
  const fetch = appFetch(app, deps);
  const server = listen(config, {
    hostname: config.host,
    port: config.port,
    // No cap of Bun's own (its 413 is bare: no problem+json, no headers, no log line, no metric):
    // ours refuses a declared Content-Length over the limit before a byte is read, and our reader
    // stops chunked bodies at the limit.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch: (request) => {
      traffic.arrived();
      return fetch(request);
    },
    error: (error) => {
      log.error({ err: error }, "unhandled server error");
      return new Response(null, { status: 500 });
    },
  });
  // Elysia hands `server` to handlers (for requestIP) only if it knows it; we own Bun.serve.
  app.server = behindProxies(server, config.http.trustedProxies, log);
  const workers: Worker[] = [startSecurityWorkers(deps.security, log)];
  workers.push(
    startCheckpointer(db.$client, join(config.dataDir, DATABASE_FILE), {
      started: () => log.info("WAL checkpoints run on a background thread"),
      failed: (message) => log.warn({ err: { message } }, "background WAL checkpoint failed"),
    }),
  );
  workers.push(startStatistics(db.$client, (message) => log.warn({ err: { message } }, "PRAGMA optimize failed")));
  if (config.webhook.dispatch) workers.push(deps.webhooks.dispatcher.start(() => traffic.busy()));
  if (redis) workers.push(startRevocationBroadcast(redis, deps.security.revocation, log));
  workers.push(startChainVerification(deps.auditVerifier, DEFAULT_VERIFIER_OPTIONS.intervalMs, log));
  workers.push(startFeedbackWorker(deps.feedback, redis, log));
  if (config.notifications.retentionDays > 0) {
    workers.push(startNotificationRetention(db.$client, config.notifications.retentionDays, deps));
  }
  if (config.auditRetentionDays > 0) {
    const retention = { clock: deps.clock, auditKey: deps.security.auditKey, log };
    workers.push(startAuditRetention(db, config.dataDir, config.auditRetentionDays, retention));
  }

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string) => {
    stopping ??= (async () => {
      deps.readiness.shuttingDown();
      // No new webhook attempts: those in flight finish during the delay and the drain, so the
      // whole shutdown stays within delay + grace + one attempt's timeout.
      const dispatching = deps.webhooks.dispatcher.stop();
      // A load balancer polling /ready needs a moment to take us out before connections are refused.
      if (config.http.shutdownDelayMs > 0) {
        log.info({ reason, delay_ms: config.http.shutdownDelayMs }, "shutting down: not ready, still serving");
        await Bun.sleep(config.http.shutdownDelayMs);
      }
      log.info({ reason }, "shutting down: no new connections, draining in-flight requests");
      if (!(await settlesWithin(server.stop(false), config.http.shutdownGraceMs))) {
        log.warn({ grace_ms: config.http.shutdownGraceMs }, "grace period over: closing remaining connections");
        await server.stop(true);
      }
      // Elysia writes a request's access line in a setImmediate after its response: the last
      // requests' lines come before the flush and the exit only if one turn of the loop passes.
      await new Promise<void>((resolve) => setImmediate(resolve));
      await Promise.all([dispatching, ...workers.map((worker) => worker.stop())]);
      // QUIT waits for Redis to answer; a hung Redis must not hold the exit.
      if (redis && !(await settlesWithin(redis.quit(), REDIS_QUIT_TIMEOUT_MS))) redis.disconnect();
      db.$client.close();
      log.info("shutdown complete");
      await flushLogger(log);
    })();
    return stopping;
  };

  const url = new URL(`http://${displayHost(config.host)}:${server.port}`);
  return { server, url, deps, shutdown };
}

export async function startRuntime(config: Config, log: Logger, clock: Clock = systemClock): Promise<Runtime> {
  const deps = await openDeps(config, log, clock);
  return serve(createApp(deps), deps);
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: Timer | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bun.serve, with a failure to listen saying where (Bun's own words name neither host nor port). */
function listen<T>(config: Config, options: Parameters<typeof Bun.serve<T>>[0]): ReturnType<typeof Bun.serve<T>> {
  try {
    return Bun.serve<T>(options);
  } catch (error) {
    throw new Error(`cannot listen on ${displayHost(config.host, true)}:${config.port}: ${(error as Error).message}`);
  }
}

function displayHost(host: string, asGiven = false): string {
  if (asGiven) return host.includes(":") ? `[${host}]` : host;
  if (host === "0.0.0.0" || host === "::") return "localhost";
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * SIGTERM/SIGINT: graceful shutdown, then exit 0 (1 if shutdown failed). A second signal exits
 * at once (130), giving its log line a moment but not a wait.
 */
export function exitOnSignals(runtime: Runtime, log: Logger): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      setTimeout(() => process.exit(130), 50).unref();
      void flushLogger(log).then(() => process.exit(130));
      return;
    }
    runtime.shutdown(signal).then(
      () => process.exit(0),
      async (error) => {
        log.error({ err: error }, "shutdown failed");
        await flushLogger(log);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

/**
 * An error nothing caught (a worker's bug, a rejected promise no one awaited) leaves the process
 * in a state nobody planned for: log it as one JSON line like every other, then exit 1 for the
 * supervisor to restart us. Without this Bun prints plain text to stderr, which log pipelines
 * drop or split.
 */
export function exitOnFatalErrors(log: Logger): void {
  const fatal = (kind: string) => (error: unknown) => {
    log.fatal({ err: error }, `${kind}: exiting`);
    void flushLogger(log).finally(() => process.exit(1));
    setTimeout(() => process.exit(1), 1000).unref();
  };
  process.on("uncaughtException", fatal("uncaught exception"));
  process.on("unhandledRejection", fatal("unhandled promise rejection"));
}
