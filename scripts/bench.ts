/**
 * Benchmark harness (`npm run bench`): loads each endpoint in ENDPOINTS with wrk and prints
 * req/s, p50, p99 and the ratio to a bare Bun.serve measured in the same run. Absolute numbers
 * drift ±5–15 % between runs on a VM, so only the ratios are meant to be compared (PERFORMANCE.md).
 *
 *   bun scripts/bench.ts [--duration=5s | --quick]
 *
 * Servers run on core 0 and wrk on core 1 (taskset), loopback only. Results also go to
 * bench-results.json in the repo root.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

const LOOPBACK = "127.0.0.1";
const REPO_ROOT = join(import.meta.dir, "..");
const RESULTS_FILE = join(REPO_ROOT, "bench-results.json");

const WRK_THREADS = 1;
const WRK_CONNECTIONS = 64;
const SERVER_CORE = 0;
const WRK_CORE = 1;
const DEFAULT_DURATION_S = 5;
const QUICK_DURATION_S = 2;

const READY_TIMEOUT_MS = 15_000;
/** wrk stops itself after -d; this only catches a wrk that hangs. */
const WRK_GRACE_MS = 15_000;
const STOP_GRACE_MS = 3_000;

type Target = "baseline" | "service";

interface Endpoint {
  name: string;
  target: Target;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  expectedStatus: number;
}

/** What gets measured. Later work adds rows here; the first row is the baseline the others are divided by. */
const ENDPOINTS: readonly Endpoint[] = [
  { name: "baseline", target: "baseline", method: "GET", path: "/", expectedStatus: 200 },
  { name: "health", target: "service", method: "GET", path: "/health", expectedStatus: 200 },
  { name: "not-found", target: "service", method: "GET", path: "/nope", expectedStatus: 404 },
  {
    name: "method-not-allowed",
    target: "service",
    method: "POST",
    path: "/health",
    headers: { "content-type": "application/json" },
    body: '{"probe":true}',
    expectedStatus: 405,
  },
  {
    name: "unsupported-media-type",
    target: "service",
    method: "POST",
    path: "/x",
    headers: { "content-type": "text/plain" },
    body: "hello",
    expectedStatus: 415,
  },
];

interface Options {
  durationS: number;
}

interface WrkResult {
  requests: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx3xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

interface Row extends WrkResult {
  name: string;
  method: string;
  path: string;
  expectedStatus: number;
  ratioToBaseline: number;
}

interface Pinning {
  server: string[];
  wrk: string[];
}

class BenchError extends Error {}

// ---------------------------------------------------------------- process bookkeeping

const children = new Set<Subprocess>();
let tempDir: string | undefined;
/** Set on SIGINT/SIGTERM: killing wrk then makes main() fail, and that failure is not news. */
let interrupted = false;

function spawnTracked(cmd: string[], options: { env?: Record<string, string>; stdout: "ignore" | "pipe" }) {
  const child = Bun.spawn(cmd, { env: options.env, stdout: options.stdout, stderr: "pipe", stdin: "ignore" });
  children.add(child);
  child.exited.finally(() => children.delete(child));
  return child;
}

async function stopChild(child: Subprocess): Promise<void> {
  child.kill("SIGTERM");
  const exited = await Promise.race([child.exited.then(() => true), Bun.sleep(STOP_GRACE_MS).then(() => false)]);
  if (!exited) child.kill("SIGKILL");
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...children].map(stopChild));
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  })();
  return cleaning;
}

// Last resort if we exit without awaiting cleanup(): never leave a server holding a core.
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    interrupted = true;
    console.error(`\nbench: ${signal}, stopping servers`);
    cleanup().finally(() => process.exit(130));
  });
}

function streamText(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

// ---------------------------------------------------------------- setup

function parseArgs(argv: readonly string[]): Options {
  let durationS = DEFAULT_DURATION_S;
  for (const arg of argv) {
    const duration = /^--duration=(\d+)s?$/.exec(arg);
    if (duration?.[1]) durationS = Number(duration[1]);
    else if (arg === "--quick") durationS = QUICK_DURATION_S;
    else if (arg === "--help" || arg === "-h") {
      console.log("usage: bun scripts/bench.ts [--duration=Ns | --quick]");
      process.exit(0);
    } else throw new BenchError(`unknown argument "${arg}" (expected --duration=Ns or --quick)`);
  }
  if (durationS < 1 || durationS > 600) throw new BenchError(`--duration must be 1-600 seconds, got ${durationS}`);
  return { durationS };
}

function requireTools(): void {
  const missing = ["wrk", "taskset"].filter((tool) => !Bun.which(tool));
  if (missing.length > 0) {
    throw new BenchError(
      `${missing.join(" and ")} not found on PATH. Install with: sudo apt-get install ${missing
        .map((tool) => (tool === "taskset" ? "util-linux" : tool))
        .join(" ")}`,
    );
  }
}

/** With one core, pinning both sides to it would measure wrk contending with the server. */
function pinning(): Pinning | undefined {
  if (availableParallelism() < 2) {
    console.warn("bench: fewer than 2 CPUs available; running unpinned, numbers will be noisy");
    return undefined;
  }
  return { server: ["taskset", "-c", String(SERVER_CORE)], wrk: ["taskset", "-c", String(WRK_CORE)] };
}

/** The kernel hands out a free port for port 0; releasing it right away leaves a tiny race we accept. */
function freePort(): number {
  const probe = Bun.serve({ hostname: LOOPBACK, port: 0, fetch: () => new Response() });
  const port = probe.port;
  probe.stop(true);
  if (port === undefined) throw new BenchError("could not allocate a loopback port");
  return port;
}

async function wrkVersion(): Promise<string> {
  // `wrk -v` prints its version and then exits non-zero with the usage text.
  const out = await streamText(Bun.spawn(["wrk", "-v"], { stdout: "pipe", stderr: "pipe" }).stdout);
  return /^wrk\s+(\S+)/.exec(out)?.[1] ?? "unknown";
}

// ---------------------------------------------------------------- servers

interface Server {
  url: string;
  child: Subprocess<"ignore", "ignore" | "pipe", "pipe">;
}

function startBaseline(pin: Pinning | undefined): Server {
  const port = freePort();
  const cmd = [...(pin?.server ?? []), process.execPath, join(import.meta.dir, "bench-baseline.ts"), String(port)];
  const child = spawnTracked(cmd, { stdout: "ignore" }) as Server["child"];
  return { url: `http://${LOOPBACK}:${port}`, child };
}

function startService(pin: Pinning | undefined, dataDir: string): Server {
  const port = freePort();
  // A clean environment, so a developer's REDIS_URL or NODE_ENV cannot silently change the numbers.
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    HOST: LOOPBACK,
    PORT: String(port),
    DATA_DIR: dataDir,
    LOG_LEVEL: "info",
    // Every request comes from one IP; a limiter would turn each row into a measurement of 429s.
    RATE_LIMIT_ENABLED: "false",
  };
  const cmd = [...(pin?.server ?? []), process.execPath, join(REPO_ROOT, "src", "main.ts"), "serve"];
  // The access log (one JSON line per request) stays on, as in production, but goes nowhere.
  const child = spawnTracked(cmd, { env, stdout: "ignore" }) as Server["child"];
  return { url: `http://${LOOPBACK}:${port}`, child };
}

async function waitUntilReady(name: string, server: Server, path: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) {
      const stderr = await streamText(server.child.stderr);
      throw new BenchError(`${name} exited with code ${server.child.exitCode} before answering:\n${stderr}`);
    }
    try {
      const response = await fetch(server.url + path, { signal: AbortSignal.timeout(1000) });
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await Bun.sleep(100);
  }
  throw new BenchError(`${name} did not answer 200 on ${path} within ${READY_TIMEOUT_MS / 1000}s`);
}

// ---------------------------------------------------------------- load

/** One real request first: a row is only meaningful if the endpoint answers what we think it does. */
async function checkStatus(endpoint: Endpoint, baseUrl: string, when: string): Promise<void> {
  const response = await fetch(baseUrl + endpoint.path, {
    method: endpoint.method,
    headers: endpoint.headers,
    body: endpoint.body,
    signal: AbortSignal.timeout(5000),
  });
  const body = await response.text();
  if (response.status !== endpoint.expectedStatus) {
    throw new BenchError(
      `${endpoint.name} (${endpoint.method} ${endpoint.path}) ${when}: expected ${endpoint.expectedStatus}, ` +
        `got ${response.status}\n${body.slice(0, 500)}`,
    );
  }
}

/** LuaJIT has no \u escapes; \ddd per UTF-8 byte is safe for any body. */
function luaString(value: string): string {
  let out = '"';
  for (const byte of new TextEncoder().encode(value)) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    out += printable ? String.fromCharCode(byte) : `\\${byte}`;
  }
  return `${out}"`;
}

/** wrk only sends GET without a script; methods, headers and bodies go through a small Lua file. */
function wrkScript(endpoint: Endpoint, dir: string): string | undefined {
  if (endpoint.method === "GET" && !endpoint.headers && endpoint.body === undefined) return undefined;
  const lines = [`wrk.method = ${luaString(endpoint.method)}`];
  if (endpoint.body !== undefined) lines.push(`wrk.body = ${luaString(endpoint.body)}`);
  for (const [name, value] of Object.entries(endpoint.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  }
  const file = join(dir, `${endpoint.name}.lua`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

function wrkArgs(durationS: number): string[] {
  return [`-t${WRK_THREADS}`, `-c${WRK_CONNECTIONS}`, `-d${durationS}s`, "--latency"];
}

async function runWrk(url: string, script: string | undefined, options: Options, pin: Pinning | undefined) {
  const cmd = [...(pin?.wrk ?? []), "wrk", ...wrkArgs(options.durationS), ...(script ? ["-s", script] : []), url];
  const child = spawnTracked(cmd, { stdout: "pipe" }) as Subprocess<"ignore", "pipe", "pipe">;
  const watchdog = setTimeout(() => child.kill("SIGKILL"), options.durationS * 1000 + WRK_GRACE_MS);
  const [stdout, stderr, code] = await Promise.all([streamText(child.stdout), streamText(child.stderr), child.exited]);
  clearTimeout(watchdog);
  if (code !== 0) throw new BenchError(`wrk exited with code ${code} for ${url}:\n${stderr}${stdout}`);
  return parseWrk(stdout);
}

const TIME_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(value: string, unit: string): number {
  const factor = TIME_UNITS_MS[unit];
  if (factor === undefined) throw new BenchError(`unknown wrk time unit "${unit}"`);
  return Number(value) * factor;
}

function match(output: string, pattern: RegExp, what: string): RegExpExecArray {
  const found = pattern.exec(output);
  if (!found) throw new BenchError(`could not find ${what} in wrk output:\n${output}`);
  return found;
}

/** Parses wrk 4.x text output; absent "Socket errors"/"Non-2xx" lines mean zero. */
function parseWrk(output: string): WrkResult {
  const rps = match(output, /^Requests\/sec:\s+([\d.]+)/m, "Requests/sec");
  const requests = match(output, /^\s*(\d+) requests in /m, "request count");
  const p50 = match(output, /^\s*50%\s+([\d.]+)(us|ms|s|m|h)\s*$/m, "50% latency");
  const p99 = match(output, /^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$/m, "99% latency");
  const non2xx = /^\s*Non-2xx or 3xx responses:\s+(\d+)/m.exec(output);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    requests: Number(requests[1]),
    requestsPerSec: Number(rps[1]),
    p50Ms: toMs(p50[1] ?? "", p50[2] ?? ""),
    p99Ms: toMs(p99[1] ?? "", p99[2] ?? ""),
    non2xx3xx: Number(non2xx?.[1] ?? 0),
    socketErrors: {
      connect: Number(errors?.[1] ?? 0),
      read: Number(errors?.[2] ?? 0),
      write: Number(errors?.[3] ?? 0),
      timeout: Number(errors?.[4] ?? 0),
    },
  };
}

/** wrk only counts "not 2xx/3xx", so that count must be all requests or none, depending on the row. */
function loadProblems(endpoint: Endpoint, result: WrkResult): string[] {
  const problems: string[] = [];
  const expectOk = endpoint.expectedStatus < 400;
  const expectedNon2xx = expectOk ? 0 : result.requests;
  if (result.non2xx3xx !== expectedNon2xx) {
    problems.push(
      `${endpoint.name}: ${result.non2xx3xx} of ${result.requests} responses were not 2xx/3xx ` +
        `(expected ${expectedNon2xx} for status ${endpoint.expectedStatus})`,
    );
  }
  const { connect, read, write, timeout } = result.socketErrors;
  if (connect + read + write + timeout > 0) {
    problems.push(
      `${endpoint.name}: socket errors connect ${connect}, read ${read}, write ${write}, timeout ${timeout}`,
    );
  }
  return problems;
}

// ---------------------------------------------------------------- report

function formatRows(rows: readonly Row[]): string {
  const header = ["endpoint", "req/s", "p50 ms", "p99 ms", "vs baseline"];
  const cells = rows.map((row) => [
    `${row.name} (${row.method} ${row.path})`,
    Math.round(row.requestsPerSec).toLocaleString("en-US"),
    row.p50Ms.toFixed(2),
    row.p99Ms.toFixed(2),
    `${row.ratioToBaseline.toFixed(2)}x`,
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i]?.length ?? 0)));
  // The name column reads best left-aligned, the numbers right-aligned.
  const render = (line: string[]) =>
    line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  const rule = widths.map((width) => "-".repeat(width)).join("  ");
  return [render(header), rule, ...cells.map(render)].join("\n");
}

function writeResults(rows: readonly Row[], options: Options, wrk: string, pin: Pinning | undefined): void {
  const results = {
    date: new Date().toISOString(),
    bun: Bun.version,
    wrk: {
      version: wrk,
      threads: WRK_THREADS,
      connections: WRK_CONNECTIONS,
      duration_s: options.durationS,
      args: wrkArgs(options.durationS),
    },
    pinning: pin ? { server_core: SERVER_CORE, wrk_core: WRK_CORE } : null,
    cpus: availableParallelism(),
    rows: rows.map((row) => ({
      name: row.name,
      method: row.method,
      path: row.path,
      expected_status: row.expectedStatus,
      requests: row.requests,
      requests_per_sec: row.requestsPerSec,
      p50_ms: row.p50Ms,
      p99_ms: row.p99Ms,
      ratio_to_baseline: Number(row.ratioToBaseline.toFixed(4)),
      non_2xx_3xx: row.non2xx3xx,
      socket_errors: row.socketErrors,
    })),
  };
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  requireTools();
  const pin = pinning();
  const wrk = await wrkVersion();
  tempDir = mkdtempSync(join(tmpdir(), "warden-bench-"));

  const servers: Record<Target, Server> = {
    baseline: startBaseline(pin),
    service: startService(pin, join(tempDir, "data")),
  };
  await Promise.all([
    waitUntilReady("baseline (scripts/bench-baseline.ts)", servers.baseline, "/"),
    waitUntilReady("service (src/main.ts serve)", servers.service, "/health"),
  ]);

  const pinned = pin ? `, servers on core ${SERVER_CORE}, wrk on core ${WRK_CORE}` : ", unpinned";
  console.log(`bun ${Bun.version}, wrk ${wrk} ${wrkArgs(options.durationS).join(" ")}${pinned}\n`);

  const rows: Row[] = [];
  const problems: string[] = [];
  for (const endpoint of ENDPOINTS) {
    if (interrupted) return 130;
    const { url } = servers[endpoint.target];
    await checkStatus(endpoint, url, "before load");
    console.error(`bench: ${endpoint.name} (${endpoint.method} ${endpoint.path}) for ${options.durationS}s`);
    const result = await runWrk(url + endpoint.path, wrkScript(endpoint, tempDir), options, pin);
    // A status that changes under load (a limiter, a crash) would make the row measure something else.
    await checkStatus(endpoint, url, "after load");
    problems.push(...loadProblems(endpoint, result));
    const baselineRps = rows[0]?.requestsPerSec ?? result.requestsPerSec;
    rows.push({ ...endpoint, ...result, ratioToBaseline: result.requestsPerSec / baselineRps });
  }

  console.log(`\n${formatRows(rows)}\n`);
  writeResults(rows, options, wrk, pin);
  console.log(`results written to ${RESULTS_FILE}`);
  if (problems.length > 0) {
    console.error(`\nbench: the load did not look as expected:\n  ${problems.join("\n  ")}`);
    return 1;
  }
  return 0;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  if (!interrupted) {
    console.error(`bench: ${error instanceof BenchError ? error.message : ((error as Error).stack ?? error)}`);
  }
} finally {
  await cleanup();
}
process.exit(exitCode);
