import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type AppDeps, appFetch, createApp } from "../app";
import { loadConfig } from "../config";
import { ManualClock } from "../lib/clock";
import { createLogger } from "../lib/logger";
import type { AuditRow } from "../modules/audit/trail";
import { openDeps } from "../runtime";

export interface TestContext {
  readonly deps: AppDeps;
  readonly app: ReturnType<typeof createApp>;
  readonly clock: ManualClock;
  /** Every JSON log line written so far. */
  readonly logs: Record<string, unknown>[];
  /** Rows of the audit trail, oldest first, optionally of one action. */
  auditEvents(action?: string): AuditRow[];
  /** What the server's Bun.serve calls: the lean path, then the app (src/app.ts appFetch). */
  readonly fetch: (request: Request) => Response | Promise<Response>;
  /** In-process request through `fetch`: `req("GET", "/health")`, JSON bodies serialised for you. */
  req(method: string, path: string, init?: { body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  close(): Promise<void>;
}

/**
 * Limits a test's scripted flows do not reach (in-process requests have no peer address, so every
 * anonymous call shares one key): the limiter still runs on every request, and its own tests set
 * small limits.
 */
const TEST_RATE_LIMITS = {
  RATE_LIMIT_PER_MINUTE: "1000000",
  RATE_LIMIT_AUTH_PER_MINUTE: "1000000",
  RATE_LIMIT_ACCOUNT_PER_MINUTE: "1000000",
};

/** The real app on a temp SQLite file (and the test Redis when `env.REDIS_URL` is given). */
export async function createTestContext(env: Record<string, string> = {}): Promise<TestContext> {
  const dataDir = mkdtempSync(join(tmpdir(), "warden-test-"));
  const config = loadConfig({ NODE_ENV: "test", DATA_DIR: dataDir, ...TEST_RATE_LIMITS, ...env });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  const clock = new ManualClock();
  const deps = await openDeps(config, createLogger("info", sink), clock);
  const app = createApp(deps);
  const fetch = appFetch(app, deps);
  return {
    deps,
    app,
    fetch,
    clock,
    logs,
    auditEvents(action) {
      const sqlite = deps.db.$client;
      return action === undefined
        ? sqlite.query<AuditRow, []>("SELECT * FROM audit_events ORDER BY seq").all()
        : sqlite.query<AuditRow, [string]>("SELECT * FROM audit_events WHERE action = ? ORDER BY seq").all(action);
    },
    async req(method, path, init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      let body: BodyInit | undefined;
      if (init.body !== undefined) {
        body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
        headers["content-type"] ??= "application/json";
      }
      return fetch(new Request(`http://localhost${path}`, { method, headers, body }));
    },
    async close() {
      if (deps.redis) await deps.redis.quit().catch(() => deps.redis?.disconnect());
      deps.db.$client.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
