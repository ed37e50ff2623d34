/**
 * Benchmark harness (`npm run bench`): loads each endpoint in ENDPOINTS with wrk and prints
 * req/s, p50, p99 and the ratio to a bare Bun.serve measured in the same run. Absolute numbers
 * drift ±5–15 % between runs on a VM, so only the ratios are meant to be compared (PERFORMANCE.md).
 *
 *   bun scripts/bench.ts [--duration=5s | --quick]
 *
 * Servers run on core 0 and wrk on core 1 (taskset), loopback only. Results also go to
 * bench-results.json in the repo root. The pieces live in scripts/bench/.
 */
import { join } from "node:path";
import { parseArgs } from "./bench/args.ts";
import { checkStatus, describe, type Endpoint, loadProblems } from "./bench/endpoint.ts";
import { BenchError, pinning, requireTools } from "./bench/host.ts";
import { cleanup, installExitHandlers, makeTempDir, wasInterrupted } from "./bench/processes.ts";
import {
  formatConditions,
  formatRows,
  RESULTS_FILE,
  type Row,
  type RunConditions,
  writeResults,
} from "./bench/report.ts";
import { startServers, waitUntilReady } from "./bench/servers.ts";
import { runWrk, wrkVersion } from "./bench/wrk.ts";

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

async function main(): Promise<number> {
  const { durationS } = parseArgs(process.argv.slice(2));
  requireTools();
  const pin = pinning();
  const run: RunConditions = { durationS, pin, wrkVersion: await wrkVersion() };
  const tempDir = makeTempDir("warden-bench-");

  const servers = startServers(pin, join(tempDir, "data"));
  await Promise.all(Object.values(servers).map(waitUntilReady));
  console.log(`${formatConditions(run)}\n`);

  const rows: Row[] = [];
  const problems: string[] = [];
  for (const endpoint of ENDPOINTS) {
    if (wasInterrupted()) return 130;
    const { url } = servers[endpoint.target];
    await checkStatus(endpoint, url, "before load");
    console.error(`bench: ${describe(endpoint)} for ${durationS}s`);
    const result = await runWrk(endpoint, url, durationS, pin, tempDir);
    // A status that changes under load (a limiter, a crash) would make the row measure something else.
    await checkStatus(endpoint, url, "after load");
    problems.push(...loadProblems(endpoint, result));
    const baselineRps = rows[0]?.requestsPerSec ?? result.requestsPerSec;
    rows.push({ ...endpoint, ...result, ratioToBaseline: result.requestsPerSec / baselineRps });
  }

  console.log(`\n${formatRows(rows)}\n`);
  writeResults(rows, run);
  console.log(`results written to ${RESULTS_FILE}`);
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
