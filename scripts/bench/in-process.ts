/**
 * What the in-process benchmarks (bench-pipeline, bench-notification-create, bench-feedback)
 * share: a checkout's real app on a temp DATA_DIR with an admin and their token, and a driver
 * that sends requests the way wrk's 64 connections arrive. They measure CPU per request without
 * sockets, steadier than wrk on a shared machine: use them to decide between two versions of the
 * code (`--against=<checkout>`), and bench.ts to report.
 */
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type Handle = (request: Request) => Response | Promise<Response>;

const PASSWORD = "correct horse battery staple";
/** Like the server under wrk: 64 requests in flight, then an event-loop turn for timers and setImmediate. */
const IN_FLIGHT = 64;

/** `--name=value` from the command line. */
export function option(name: string): string | undefined {
  return process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** What the benches read of a checkout's deps (another checkout's types may differ). */
export interface CheckoutDeps {
  redis?: { status: string; disconnect(): void };
  feedback: { spool?: { depth: number } };
}

export interface Checkout {
  deps: CheckoutDeps;
  /** What Bun.serve calls: the lean path in front of Elysia (Elysia's handle in checkouts before it). */
  handle: Handle;
  /** Elysia alone. */
  elysia: Handle;
  /** An admin's access token in tenant `tenant`. */
  token: string;
  close(): void;
}

/** The real app of the checkout at `root` on a temp DATA_DIR with `env`, its log going to /dev/null. */
export async function openCheckout(root: string, env: Record<string, string>, tenant = "bench"): Promise<Checkout> {
  const load = (path: string) => import(join(root, path));
  const [{ createApp, appFetch }, { loadConfig }, { createLogger }, { StdoutSink }, { credentialsFor }, { openDeps }] =
    await Promise.all([
      load("src/app.ts"),
      load("src/config.ts"),
      load("src/lib/logger.ts"),
      load("src/lib/log-sink.ts"),
      load("src/modules/admin/identity.ts"),
      load("src/runtime.ts"),
    ]);
  const dataDir = mkdtempSync(join(tmpdir(), "warden-bench-in-process-"));
  const log = createLogger("info", new StdoutSink(openSync("/dev/null", "w")));
  const deps = await openDeps(loadConfig({ ...env, DATA_DIR: dataDir }), log);
  const app = createApp(deps);
  const credentials = await credentialsFor(PASSWORD);
  deps.db.transaction((tx: unknown) => {
    deps.security.identity.ensureTenant(tx, tenant);
    deps.security.identity.createUser(tx, { tenantId: tenant, email: "a@bench.test", role: "admin", credentials });
  });
  const login = await app.handle(
    new Request("http://localhost/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "password", tenant, username: "a@bench.test", password: PASSWORD }),
    }),
  );
  if (login.status !== 200) throw new Error(`bench login answered ${login.status}: ${await login.text()}`);
  const { access_token } = (await login.json()) as { access_token: string };
  return {
    deps,
    handle: appFetch ? appFetch(app, deps) : app.handle,
    elysia: app.handle,
    token: access_token,
    close: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

/**
 * A JSON POST as wrk sends it, Content-Length included: without one the service reads the body as
 * a chunked stream, which no benchmarked client sends and which costs several µs more a request.
 */
export function jsonPost(url: string, headers: Readonly<Record<string, string>>, body: string): Request {
  const length = String(Buffer.byteLength(body));
  return new Request(url, { method: "POST", headers: { ...headers, "content-length": length }, body });
}

export interface PerRequest {
  cpuUs: number;
  wallUs: number;
}

/** Sends `requests` requests made by `one` (which checks its response), 64 at a time; process CPU (user + sys) and wall time per request. */
export async function drive(one: () => Promise<void>, requests: number): Promise<PerRequest> {
  const cpu = process.cpuUsage();
  const started = Bun.nanoseconds();
  for (let sent = 0; sent < requests; sent += IN_FLIGHT) {
    const batch: Promise<void>[] = [];
    for (let i = 0; i < IN_FLIGHT; i++) batch.push(one());
    await Promise.all(batch);
    await new Promise<void>((done) => setImmediate(done));
  }
  const used = process.cpuUsage(cpu);
  return { cpuUs: (used.user + used.system) / requests, wallUs: (Bun.nanoseconds() - started) / 1000 / requests };
}
