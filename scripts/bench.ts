/**
 * Benchmark harness (`npm run bench`): loads each endpoint in ENDPOINTS with wrk and prints
 * req/s, p50, p99 and the ratio to a bare Bun.serve measured in the same run. Absolute numbers
 * drift ±5–15 % between runs on a VM, so only the ratios are meant to be compared (PERFORMANCE.md).
 *
 *   bun scripts/bench.ts [--duration=5s | --quick] [--only=row,row] [--rounds=N]
 *
 * Servers run on core 0 and wrk on core 1 (taskset), loopback only. Each sample waits until
 * every server is idle (the WAL checkpoint after a write row, at most 30 s), so no row pays for
 * the one before. Results also go to bench-results.json in the repo root. The pieces live in
 * scripts/bench/.
 *
 * Authenticated rows need credentials: once the service answers, `admin create` makes an admin
 * in its DATA_DIR and a password login gives the bearer token the rows replay.
 */
import { join } from "node:path";
import { parseArgs } from "./bench/args.ts";
import { settle } from "./bench/cpu.ts";
import { checkStatus, describe, type Endpoint, loadProblems } from "./bench/endpoint.ts";
import { BenchError, type Pinning, pinning, requireTools, WRK_CORE } from "./bench/host.ts";
import {
  cleanup,
  installExitHandlers,
  makeTempDir,
  spawnTracked,
  streamText,
  wasInterrupted,
} from "./bench/processes.ts";
import { startBenchRedis } from "./bench/redis.ts";
import { type PasswordLogin, REFRESH_CHAINS, runRefreshLoad } from "./bench/refresh-load.ts";
import {
  compareRows,
  formatComparison,
  formatConditions,
  formatRows,
  RESULTS_FILE,
  type Row,
  type RunConditions,
  writeResults,
} from "./bench/report.ts";
import { combine, type Sample, sample } from "./bench/rounds.ts";
import { startServers, waitUntilReady } from "./bench/servers.ts";
import {
  createEndpoint,
  type Drain,
  drainBacklog,
  formatDeliveries,
  measureDeliveries,
  startBenchReceiver,
} from "./bench/webhooks.ts";
import { runWrk, type WrkResult, wrkVersion } from "./bench/wrk.ts";

const NODE_HELLO = "node-hello";
const REDIS_FLOOR = "redis-set-floor";
/**
 * Rows read against another row of the same run: the authenticated GET against the Node.js
 * hello-world it is to beat, feedback against the bare Redis-backed POST that bounds it. The
 * reference row runs whenever a row compared with it does.
 */
const COMPARISONS: readonly { row: string; against: string }[] = [
  { row: "auth-me", against: NODE_HELLO },
  { row: "auth-me-limited-local", against: NODE_HELLO },
  { row: "auth-me-limited-redis", against: NODE_HELLO },
  { row: "feedback-post-redis", against: REDIS_FLOOR },
];

/** What gets measured. Later work adds rows here; the first row is the baseline the others are divided by. */
const ENDPOINTS: readonly Endpoint[] = [
  { name: "baseline", target: "baseline", method: "GET", path: "/", expectedStatus: 200 },
  // The bar the authenticated GET is to beat (see COMPARISONS).
  { name: NODE_HELLO, target: "node-hello", method: "GET", path: "/", expectedStatus: 200 },
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

/** What `admin create --json` prints, plus the access token of one password login. */
interface BenchCredentials extends PasswordLogin {
  userId: string;
  apiKey: string;
  accessToken: string;
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };
// argon2id at OWASP parameters costs milliseconds per login: 64 connections would only queue
// behind it (and trip wrk's 2 s timeout), so this row runs with a few.
const PASSWORD_CONNECTIONS = 4;

/** Rows that need an account: the cheapest authenticated GET, and the token endpoint per grant. */
function authenticatedEndpoints(credentials: BenchCredentials): Endpoint[] {
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const authMe: Endpoint = {
    name: "auth-me",
    target: "service",
    method: "GET",
    path: "/v1/auth/me",
    headers: { authorization: `Bearer ${credentials.accessToken}` },
    expectedStatus: 200,
  };
  const feedback: Endpoint = {
    // Feedback into Redis: the entries of one event-loop turn in one atomic script (each entry,
    // its subject index and the tenant's subject index), a new subject per request.
    name: "feedback-post-redis",
    target: "service-redis",
    method: "POST",
    path: "/v1/feedback",
    headers: { authorization: `Bearer ${credentials.accessToken}`, "content-type": "application/json" },
    body: JSON.stringify({ subject_type: "alert", subject_id: "bench-__N__", verdict: "useful", rating: 4 }),
    uniqueMarker: "__N__",
    expectedStatus: 202,
  };
  return [
    authMe,
    // The lean path's gain (src/plugins/lean-routes.ts): each row again with every request through
    // Elysia (HTTP_LEAN_PATH=false), right after it, so the two share the machine's mood.
    { ...authMe, name: "auth-me-elysia", target: "service-elysia" },
    // The rate limiter's cost: the auth-me row again, limiter on (a limit never reached).
    { ...authMe, name: "auth-me-limited-local", target: "service-limited" },
    { ...authMe, name: "auth-me-limited-local-elysia", target: "service-limited-elysia" },
    { ...authMe, name: "auth-me-limited-redis", target: "service-redis-limited" },
    // The other lean route: one indexed count per request.
    { ...authMe, name: "unread-count", path: "/v1/notifications/unread-count" },
    feedback,
    // Its floor: the same request to a bare Elysia route storing the body with one SET … EX.
    { ...feedback, name: REDIS_FLOOR, target: "redis-floor" },
    {
      name: "token-client-credentials",
      target: "service",
      method: "POST",
      path: "/v1/auth/token",
      headers: FORM,
      body: form({ grant_type: "client_credentials", client_secret: credentials.apiKey }),
      expectedStatus: 200,
    },
    {
      name: "token-password",
      target: "service",
      method: "POST",
      path: "/v1/auth/token",
      headers: FORM,
      body: form({
        grant_type: "password",
        tenant: credentials.tenant,
        username: credentials.username,
        password: credentials.password,
      }),
      expectedStatus: 200,
      connections: PASSWORD_CONNECTIONS,
    },
    {
      // An audited admin write: the revocation and its audit event in one transaction, a new jti
      // per request. scripts/bench-audit.ts compares it with the same build auditing nothing.
      name: "revocation-create",
      target: "service",
      method: "POST",
      path: "/v1/admin/revocations",
      headers: { authorization: `Bearer ${credentials.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ jti: "bench-__N__" }),
      uniqueMarker: "__N__",
      expectedStatus: 201,
    },
    {
      name: "token-refresh",
      target: "service",
      method: "POST",
      path: "/v1/auth/token",
      expectedStatus: 200,
      connections: REFRESH_CHAINS,
      loader: "refresh-chains",
    },
    {
      // The same create whose type no endpoint takes: notification and inbox row only, no webhook.
      name: "notification-create-inbox-only",
      target: "service",
      method: "POST",
      path: "/v1/notifications",
      headers: { authorization: `Bearer ${credentials.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ recipients: { user_ids: [credentials.userId] }, type: "inbox.note", title: "bench" }),
      expectedStatus: 201,
    },
    {
      // It leaves a backlog of deliveries, whose drain is measured (and waited for) right after.
      // One recipient, one endpoint (the bench's receiver), the dispatcher delivering alongside
      // as in production.
      name: "notification-create",
      leavesDeliveries: true,
      target: "service",
      method: "POST",
      path: "/v1/notifications",
      headers: { authorization: `Bearer ${credentials.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ recipients: { user_ids: [credentials.userId] }, type: "bench.created", title: "bench" }),
      expectedStatus: 201,
    },
  ];
}

const CLI_TIMEOUT_MS = 15_000;

/** An admin in the service's DATA_DIR (through the real CLI) and an access token from a password login. */
async function benchCredentials(serviceUrl: string, dataDir: string): Promise<BenchCredentials> {
  const main = join(import.meta.dir, "..", "src", "main.ts");
  const args = ["admin", "create", "--tenant", "bench", "--email", "admin@bench.test", "--json"];
  const child = spawnTracked([process.execPath, main, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", DATA_DIR: dataDir },
    stdout: "pipe",
  });
  const watchdog = setTimeout(() => child.kill("SIGKILL"), CLI_TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([streamText(child.stdout), streamText(child.stderr), child.exited]);
  clearTimeout(watchdog);
  if (code !== 0) throw new BenchError(`admin create exited with code ${code}:\n${stderr}${stdout}`);
  const created = JSON.parse(stdout) as {
    tenant_id: string;
    user_id: string;
    email: string;
    password: string;
    api_key: string;
  };

  const login = { tenant: created.tenant_id, username: created.email, password: created.password };
  const response = await fetch(`${serviceUrl}/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ grant_type: "password", ...login }),
    signal: AbortSignal.timeout(5000),
  });
  const body = await response.text();
  if (response.status !== 200) throw new BenchError(`bench login answered ${response.status}: ${body.slice(0, 500)}`);
  const { access_token } = JSON.parse(body) as { access_token: string };
  return { ...login, userId: created.user_id, apiKey: created.api_key, accessToken: access_token };
}

/** One row's load: wrk, with a real request checked before and after, or the refresh chains. */
async function measure(
  endpoint: Endpoint,
  url: string,
  durationS: number,
  pin: Pinning | undefined,
  tempDir: string,
  credentials: BenchCredentials,
): Promise<WrkResult> {
  console.error(`bench: ${describe(endpoint)} for ${durationS}s`);
  // Every refresh is checked by the chains themselves: each must be a 200 carrying the next token.
  if (endpoint.loader === "refresh-chains") return runRefreshLoad(url, durationS, pin, credentials);
  await checkStatus(endpoint, url, "before load");
  const result = await runWrk(endpoint, url, durationS, pin, tempDir);
  // A status that changes under load (a limiter, a crash) would make the row measure something else.
  await checkStatus(endpoint, url, "after load");
  return result;
}

async function main(): Promise<number> {
  const { durationS, only, rounds } = parseArgs(process.argv.slice(2));
  requireTools();
  const pin = pinning();
  // The webhook receiver runs in this process: keep it on wrk's core, off the server's.
  if (pin) Bun.spawnSync(["taskset", "-a", "-cp", String(WRK_CORE), String(process.pid)], { stdout: "ignore" });
  const run: RunConditions = { durationS, rounds, pin, wrkVersion: await wrkVersion() };
  const tempDir = makeTempDir("warden-bench-");

  const dataDir = join(tempDir, "data");
  const servers = await startServers(pin, dataDir, await startBenchRedis(tempDir, pin));
  await Promise.all(Object.values(servers).map(waitUntilReady));
  const credentials = await benchCredentials(servers.service.url, dataDir);
  const receiver = startBenchReceiver();
  const endpointId = await createEndpoint(servers.service.url, credentials.accessToken, receiver.url);
  console.log(`${formatConditions(run)}\n`);

  const problems: string[] = [];
  const all = [...ENDPOINTS, ...authenticatedEndpoints(credentials)];
  const [baseline, ...others] = all;
  if (!baseline) throw new BenchError("no baseline row");
  const references = new Set(COMPARISONS.filter((c) => only?.includes(c.row)).map((c) => c.against));
  const rest = only ? others.filter((e) => only.includes(e.name) || references.has(e.name)) : others;
  const drains: Drain[] = [];
  const samples = new Map<Endpoint, Sample[]>([baseline, ...rest].map((e) => [e, []]));
  const serverPids = Object.values(servers).map((server) => server.child.pid);
  let unsettled = 0;
  const take = async (endpoint: Endpoint, base?: Sample): Promise<Sample> => {
    const { url, child } = servers[endpoint.target];
    if (!(await settle(serverPids))) unsettled++;
    const taken = await sample(child.pid, () => measure(endpoint, url, durationS, pin, tempDir, credentials), base);
    problems.push(...loadProblems(endpoint, taken));
    samples.get(endpoint)?.push(taken);
    if (endpoint.leavesDeliveries) {
      const drain = await drainBacklog(servers.service.url, credentials.accessToken, receiver);
      if (drain.left > 0)
        problems.push(`${endpoint.name}: ${drain.left} deliveries still waiting after the drain window`);
      drains.push(drain);
    }
    return taken;
  };
  // Every other row is a ratio to the baseline: measured once first, or with --rounds right
  // before each row, so that a change in what the VM gives us falls on both sides of a ratio.
  let base: Sample | undefined;
  for (let round = 0; round < rounds; round++) {
    for (const endpoint of rest.length > 0 ? rest : [undefined]) {
      if (wasInterrupted()) return 130;
      if (rounds > 1 || !base) base = await take(baseline);
      if (endpoint) await take(endpoint, base);
    }
  }
  const rows: Row[] = [...samples].map(([endpoint, taken]) => combine(endpoint, taken));

  console.error("bench: create → receipt latency");
  const deliveries = await measureDeliveries(
    servers.service.url,
    credentials.accessToken,
    receiver,
    endpointId,
    credentials.userId,
    drains,
  );
  receiver.stop();

  const comparisons = COMPARISONS.flatMap((c) => compareRows(rows, c.row, c.against) ?? []);
  const compared = comparisons.map(formatComparison).join("\n");
  console.log(`\n${formatRows(rows)}\n\n${compared ? `${compared}\n\n` : ""}${formatDeliveries(deliveries)}\n`);
  writeResults(rows, run, {
    webhooks: deliveries,
    comparisons: comparisons.map((c) => ({
      row: c.row,
      against: c.against,
      ratio: Number(c.ratio.toFixed(4)),
      round_ratios: c.roundRatios?.map((ratio) => Number(ratio.toFixed(4))),
      cpu_ratio: c.cpuRatio === undefined ? undefined : Number(c.cpuRatio.toFixed(4)),
    })),
  });
  console.log(`results written to ${RESULTS_FILE}`);
  if (unsettled > 0) console.log(`note: ${unsettled} samples began before the servers went idle (waited 30 s each)`);
  if (problems.length > 0) {
    console.error(`\nbench: the load did not look as expected:\n  ${problems.join("\n  ")}`);
    return 1;
  }
  return 0;
}

installExitHandlers();
let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  if (!wasInterrupted()) {
    console.error(`bench: ${error instanceof BenchError ? error.message : ((error as Error).stack ?? error)}`);
  }
} finally {
  await cleanup();
}
process.exit(exitCode);
