/**
 * What the audit trail costs a write (issue 4, "Speed"): POST /v1/admin/revocations {jti} with
 * a new jti per request (a wrk counter), against the service as built (auditing on) and the same
 * build with the audit hook a no-op (scripts/bench/server-without-audit.ts), in the same run as
 * the bare Bun.serve baseline. Targets: overhead 1 − audited/unaudited < 15 %, and the audited
 * write ≥ 20 % of the baseline's req/s. Exits 1 if one is missed or the load misbehaved.
 *
 *   bun scripts/bench-audit.ts [--duration=5s | --quick] [--rounds=N]
 *
 * Servers on core 0, wrk on core 1, loopback only, one data dir per service. Afterwards the
 * audit rows are counted: the audited service must hold an event per 2xx, the other none.
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { DATABASE_FILE } from "../db/client.ts";
import { parseArgs } from "./bench/args.ts";
import { checkStatus, describe, type Endpoint, loadProblems } from "./bench/endpoint.ts";
import { BenchError, type Pinning, pinning, requireTools } from "./bench/host.ts";
import {
  cleanup,
  installExitHandlers,
  makeTempDir,
  spawnTracked,
  streamText,
  wasInterrupted,
} from "./bench/processes.ts";
import { formatConditions, formatRows, type Row } from "./bench/report.ts";
import { combine, median, type Sample, sample } from "./bench/rounds.ts";
import { type Server, serviceEnv, startServer, waitUntilReady } from "./bench/servers.ts";
import { runWrk, type WrkResult, wrkVersion } from "./bench/wrk.ts";

/** " (0.12–0.18 over N rounds)" for percentages measured more than once. */
function spread(values: readonly number[]): string {
  if (values.length < 2) return "";
  const pct = (value: number) => (value * 100).toFixed(1);
  return ` (${pct(Math.min(...values))}–${pct(Math.max(...values))} over ${values.length} rounds)`;
}

const REPO_ROOT = join(import.meta.dir, "..");
const MAIN = join(REPO_ROOT, "src", "main.ts");
const MAX_OVERHEAD = 0.15;
const MIN_RATIO_TO_BASELINE = 0.2;
const CLI_TIMEOUT_MS = 15_000;
const JTI_MARKER = "__N__";

interface Service {
  server: Server;
  dataDir: string;
}

function startService(pin: Pinning | undefined, name: string, entry: string[], dataDir: string): Service {
  const server = startServer(pin, {
    name,
    readyPath: "/health",
    args: () => entry,
    env: (port) => serviceEnv(port, dataDir),
  });
  return { server, dataDir };
}

/** An admin made by the real CLI in the service's data dir, and an access token from a password login. */
async function adminToken(service: Service): Promise<string> {
  const args = ["admin", "create", "--tenant", "bench", "--email", "admin@bench.test", "--json"];
  const child = spawnTracked([process.execPath, MAIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", DATA_DIR: service.dataDir },
    stdout: "pipe",
  });
  const watchdog = setTimeout(() => child.kill("SIGKILL"), CLI_TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([streamText(child.stdout), streamText(child.stderr), child.exited]);
  clearTimeout(watchdog);
  if (code !== 0) throw new BenchError(`admin create exited with code ${code}:\n${stderr}${stdout}`);
  const created = JSON.parse(stdout) as { tenant_id: string; email: string; password: string };
  const response = await fetch(`${service.server.url}/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      grant_type: "password",
      tenant: created.tenant_id,
      username: created.email,
      password: created.password,
    }),
    signal: AbortSignal.timeout(5000),
  });
  const body = await response.text();
  if (response.status !== 200) throw new BenchError(`bench login answered ${response.status}: ${body.slice(0, 500)}`);
  return (JSON.parse(body) as { access_token: string }).access_token;
}

function revocationRow(name: string, token: string): Endpoint {
  return {
    name,
    target: "service",
    method: "POST",
    path: "/v1/admin/revocations",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ jti: `bench-${JTI_MARKER}` }),
    uniqueMarker: JTI_MARKER,
    expectedStatus: 201,
  };
}

async function measure(endpoint: Endpoint, url: string, durationS: number, pin: Pinning | undefined, dir: string) {
  console.error(`bench-audit: ${describe(endpoint)} for ${durationS}s`);
  await checkStatus(endpoint, url, "before load");
  const result = await runWrk(endpoint, url, durationS, pin, dir);
  await checkStatus(endpoint, url, "after load");
  return result;
}

/** revocation.create events and revoked jtis on disk: the proof of which server audited. */
function countRows(dataDir: string): { events: number; revoked: number } {
  const sqlite = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
  try {
    const count = (sql: string) => sqlite.query<{ n: number }, []>(sql).get()?.n ?? 0;
    return {
      events: count("SELECT count(*) AS n FROM audit_events WHERE action = 'revocation.create'"),
      revoked: count("SELECT count(*) AS n FROM revoked_tokens WHERE jti LIKE 'bench-%'"),
    };
  } finally {
    sqlite.close();
  }
}

function rowCountProblems(audited: Service, unaudited: Service, results: Record<string, WrkResult>): string[] {
  const problems: string[] = [];
  const ok = (result: WrkResult | undefined) => (result ? result.requests - result.non2xx3xx : 0);
  const on = countRows(audited.dataDir);
  const off = countRows(unaudited.dataDir);
  console.log(
    `rows on disk: audited ${on.events} revocation.create events / ${on.revoked} revoked jtis; ` +
      `unaudited ${off.events} events / ${off.revoked} revoked jtis`,
  );
  if (on.events < ok(results.audited)) problems.push(`audited: ${on.events} events for ${ok(results.audited)} 2xx`);
  if (off.events !== 0) problems.push(`unaudited: ${off.events} events were written: the no-op swap did not hold`);
  if (off.revoked < ok(results.unaudited))
    problems.push(`unaudited: ${off.revoked} revoked jtis for ${ok(results.unaudited)} 2xx`);
  return problems;
}

async function main(): Promise<number> {
  const { durationS, rounds } = parseArgs(process.argv.slice(2));
  requireTools();
  const pin = pinning();
  const tempDir = makeTempDir("warden-bench-audit-");
  const baseline = startServer(pin, {
    name: "baseline (scripts/bench-baseline.ts)",
    readyPath: "/",
    args: (port) => [join(import.meta.dir, "bench-baseline.ts"), String(port)],
  });
  const audited = startService(pin, "service (src/main.ts serve)", [MAIN, "serve"], join(tempDir, "audited"));
  const unaudited = startService(
    pin,
    "service without audit (scripts/bench/server-without-audit.ts)",
    [join(import.meta.dir, "bench", "server-without-audit.ts")],
    join(tempDir, "unaudited"),
  );
  await Promise.all([baseline, audited.server, unaudited.server].map(waitUntilReady));
  const [auditedToken, unauditedToken] = await Promise.all([adminToken(audited), adminToken(unaudited)]);
  console.log(`${formatConditions({ durationS, rounds, pin, wrkVersion: await wrkVersion() })}\n`);

  const plan: [key: string, Endpoint, Server][] = [
    ["baseline", { name: "baseline", target: "baseline", method: "GET", path: "/", expectedStatus: 200 }, baseline],
    ["audited", revocationRow("revocation-create, audited", auditedToken), audited.server],
    ["unaudited", revocationRow("revocation-create, audit no-op", unauditedToken), unaudited.server],
  ];
  const problems: string[] = [];
  const samples = new Map<string, Sample[]>(plan.map(([key]) => [key, []]));
  const overheads: number[] = [];
  // With --rounds each round measures all three again: the ratios and the overhead are taken
  // within a round (neighbours in time), then the medians reported.
  const cpuOverheads: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const taken: Record<string, Sample> = {};
    for (const [key, endpoint, server] of plan) {
      if (wasInterrupted()) return 130;
      const load = () => measure(endpoint, server.url, durationS, pin, tempDir);
      const one = await sample(server.child.pid, load, taken.baseline);
      problems.push(...loadProblems(endpoint, one));
      taken[key] = one;
      samples.get(key)?.push(one);
    }
    const { audited: on, unaudited: off } = taken;
    if (on && off) {
      overheads.push(1 - on.requestsPerSec / off.requestsPerSec);
      if (on.serverCpuUs && off.serverCpuUs) cpuOverheads.push(1 - off.serverCpuUs / on.serverCpuUs);
    }
  }
  const rows: Row[] = plan.map(([key, endpoint]) => combine(endpoint, samples.get(key) ?? []));
  const results = Object.fromEntries(plan.map(([key], i) => [key, rows[i] as WrkResult]));
  console.log(`\n${formatRows(rows)}\n`);
  problems.push(...rowCountProblems(audited, unaudited, results));

  const overhead = median(overheads);
  const ratio = rows[1]?.ratioToBaseline ?? Number.NaN;
  const verdict = (ok: boolean) => (ok ? "ok" : "MISSED");
  console.log(
    `audit overhead (1 − audited/unaudited): ${(overhead * 100).toFixed(1)} %${spread(overheads)}  ` +
      `(target < ${MAX_OVERHEAD * 100} %)  ${verdict(overhead < MAX_OVERHEAD)}`,
  );
  console.log(
    `audited write vs baseline:              ${(ratio * 100).toFixed(1)} %${spread(rows[1]?.roundRatios ?? [])}  ` +
      `(target ≥ ${MIN_RATIO_TO_BASELINE * 100} %)  ${verdict(ratio >= MIN_RATIO_TO_BASELINE)}`,
  );
  if (cpuOverheads.length > 0)
    console.log(
      `audit overhead by server CPU per request:   ${(median(cpuOverheads) * 100).toFixed(1)} %${spread(cpuOverheads)}  ` +
        "(steal left out; for reading, the target is the req/s one)",
    );
  if (!(overhead < MAX_OVERHEAD)) problems.push("audit overhead target missed");
  if (!(ratio >= MIN_RATIO_TO_BASELINE)) problems.push("audited write below 20 % of the baseline");
  if (problems.length > 0) {
    console.error(`\nbench-audit:\n  ${problems.join("\n  ")}`);
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
    console.error(`bench-audit: ${error instanceof BenchError ? error.message : ((error as Error).stack ?? error)}`);
  }
} finally {
  await cleanup();
}
process.exit(exitCode);
