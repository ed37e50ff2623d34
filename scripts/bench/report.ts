/** What a run prints and the bench-results.json it leaves in the repo root. */
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { describe, type Endpoint } from "./endpoint.ts";
import { type Pinning, SERVER_CORE, WRK_CORE } from "./host.ts";
import { median } from "./rounds.ts";
import { WRK_CONNECTIONS, WRK_THREADS, type WrkResult, wrkArgs } from "./wrk.ts";

export const RESULTS_FILE = join(import.meta.dir, "..", "..", "bench-results.json");

export interface RunConditions {
  durationS: number;
  rounds: number;
  wrkVersion: string;
  pin: Pinning | undefined;
}

export interface Row extends Endpoint, WrkResult {
  /** The median over rounds of req/s divided by the baseline measured before it. */
  ratioToBaseline: number;
  /** CPU steal on the server's or wrk's core while the row ran (the worst core, the worst round); undefined off Linux. */
  stealPct: number | undefined;
  /** With more than one round, each round's ratio, in order. */
  roundRatios: number[] | undefined;
  /** The server's CPU per request (median over rounds); undefined off Linux. */
  serverCpuUs: number | undefined;
  /** The baseline's CPU per request over this row's (median over rounds): req/s per core, steal left out. */
  cpuRatio: number | undefined;
}

export function formatConditions(run: RunConditions): string {
  const pinned = run.pin ? `, servers on core ${SERVER_CORE}, wrk and Redis on core ${WRK_CORE}` : ", unpinned";
  const rounds = run.rounds > 1 ? `, ${run.rounds} rounds (each row right after a baseline of its own; medians)` : "";
  return `bun ${Bun.version}, wrk ${run.wrkVersion} ${wrkArgs(run.durationS).join(" ")}${pinned}${rounds}`;
}

export function formatRows(rows: readonly Row[]): string {
  const rounds = rows.some((row) => row.roundRatios);
  const header = [
    "endpoint",
    "conns",
    "req/s",
    "p50 ms",
    "p99 ms",
    "vs baseline",
    ...(rounds ? ["range"] : []),
    "steal %",
    "CPU µs/req",
    "CPU ratio",
  ];
  const range = (ratios: number[] | undefined) =>
    ratios ? `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}` : "";
  const cells = rows.map((row) => [
    describe(row),
    String(row.connections ?? WRK_CONNECTIONS),
    Math.round(row.requestsPerSec).toLocaleString("en-US"),
    row.p50Ms.toFixed(2),
    row.p99Ms.toFixed(2),
    `${row.ratioToBaseline.toFixed(2)}x`,
    ...(rounds ? [range(row.roundRatios)] : []),
    row.stealPct === undefined ? "" : row.stealPct.toFixed(0),
    row.serverCpuUs === undefined ? "" : row.serverCpuUs.toFixed(1),
    row.cpuRatio === undefined ? "" : `${row.cpuRatio.toFixed(2)}x`,
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i]?.length ?? 0)));
  // The name column reads best left-aligned, the numbers right-aligned.
  const render = (line: string[]) =>
    line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  const rule = widths.map((width) => "-".repeat(width)).join("  ");
  return [render(header), rule, ...cells.map(render)].join("\n");
}

/** How a row compares with another measured in the same run (both as ratios to their own baselines). */
export interface Comparison {
  row: string;
  against: string;
  /** The median over rounds of the row's ratio over the other's, round by round. */
  ratio: number;
  roundRatios: number[] | undefined;
  /** The other's CPU per request over the row's. */
  cpuRatio: number | undefined;
}

/**
 * `row` against `against`, round by round: each was measured right after a baseline of its own,
 * so the quotient of their ratios cancels the baseline; undefined unless both rows ran.
 */
export function compareRows(rows: readonly Row[], row: string, against: string): Comparison | undefined {
  const mine = rows.find((candidate) => candidate.name === row);
  const theirs = rows.find((candidate) => candidate.name === against);
  if (!mine || !theirs) return undefined;
  const mineRounds = mine.roundRatios ?? [mine.ratioToBaseline];
  const theirRounds = theirs.roundRatios ?? [theirs.ratioToBaseline];
  const quotients = mineRounds.map((ratio, i) => ratio / (theirRounds[i] ?? Number.NaN));
  const cpuRatio = mine.serverCpuUs && theirs.serverCpuUs ? theirs.serverCpuUs / mine.serverCpuUs : undefined;
  return {
    row,
    against,
    ratio: median(quotients),
    roundRatios: quotients.length > 1 ? quotients : undefined,
    cpuRatio,
  };
}

export function formatComparison(comparison: Comparison): string {
  const rounds = comparison.roundRatios;
  const range = rounds
    ? ` (${Math.min(...rounds).toFixed(2)}–${Math.max(...rounds).toFixed(2)} over ${rounds.length} rounds)`
    : "";
  const cpu = comparison.cpuRatio === undefined ? "" : `; by CPU per request ${comparison.cpuRatio.toFixed(2)}x`;
  return `${comparison.row} against ${comparison.against}: ${comparison.ratio.toFixed(2)}x the req/s${range}${cpu}`;
}

export function writeResults(rows: readonly Row[], run: RunConditions, extra: Record<string, unknown> = {}): void {
  const results = {
    date: new Date().toISOString(),
    rounds: run.rounds,
    bun: Bun.version,
    wrk: {
      version: run.wrkVersion,
      threads: WRK_THREADS,
      connections: WRK_CONNECTIONS,
      duration_s: run.durationS,
      args: wrkArgs(run.durationS),
    },
    pinning: run.pin ? { server_core: SERVER_CORE, wrk_core: WRK_CORE, redis_core: WRK_CORE } : null,
    cpus: availableParallelism(),
    rows: rows.map((row) => ({
      name: row.name,
      method: row.method,
      path: row.path,
      expected_status: row.expectedStatus,
      connections: row.connections ?? WRK_CONNECTIONS,
      loader: row.loader ?? "wrk",
      requests: row.requests,
      requests_per_sec: row.requestsPerSec,
      p50_ms: row.p50Ms,
      p99_ms: row.p99Ms,
      ratio_to_baseline: Number(row.ratioToBaseline.toFixed(4)),
      round_ratios: row.roundRatios?.map((ratio) => Number(ratio.toFixed(4))),
      steal_percent: row.stealPct === undefined ? undefined : Number(row.stealPct.toFixed(1)),
      server_cpu_us_per_request: row.serverCpuUs === undefined ? undefined : Number(row.serverCpuUs.toFixed(2)),
      cpu_ratio_to_baseline: row.cpuRatio === undefined ? undefined : Number(row.cpuRatio.toFixed(4)),
      non_2xx_3xx: row.non2xx3xx,
      socket_errors: row.socketErrors,
    })),
    ...extra,
  };
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
}
