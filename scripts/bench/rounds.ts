/** Folds a row's measurements (one per round) into the row the table and bench-results.json show. */
import { cpuTicks, processCpuSeconds, stealPercent } from "./cpu.ts";
import type { Endpoint } from "./endpoint.ts";
import { BENCH_CORES } from "./host.ts";
import type { Row } from "./report.ts";
import type { WrkResult } from "./wrk.ts";

export interface Sample extends WrkResult {
  /** req/s over the baseline measured just before this sample (1 for a baseline sample). */
  ratio: number;
  stealPct: number | undefined;
  /** The server process's CPU (user + system) per request during the sample. */
  serverCpuUs: number | undefined;
  /** The baseline's CPU per request over this sample's (1 for a baseline sample). */
  cpuRatio: number | undefined;
}

/** Runs one load against the server process `pid`, noting steal and the server's CPU per request around it; `base` is the baseline sample to divide by. */
export async function sample(pid: number, load: () => Promise<WrkResult>, base?: Sample): Promise<Sample> {
  const steal = cpuTicks(BENCH_CORES);
  const cpu = processCpuSeconds(pid);
  const result = await load();
  const stealPct = stealPercent(steal, cpuTicks(BENCH_CORES));
  const used = processCpuSeconds(pid);
  const serverCpuUs = used === undefined || cpu === undefined ? undefined : ((used - cpu) * 1e6) / result.requests;
  const cpuRatio = !base ? 1 : base.serverCpuUs && serverCpuUs ? base.serverCpuUs / serverCpuUs : undefined;
  return { ...result, ratio: base ? result.requestsPerSec / base.requestsPerSec : 1, stealPct, serverCpuUs, cpuRatio };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** Medians per column; counts and errors summed; the worst steal, so a disturbed round shows. */
export function combine(endpoint: Endpoint, samples: readonly Sample[]): Row {
  const of = (pick: (sample: Sample) => number) => median(samples.map(pick));
  const sum = (pick: (sample: Sample) => number) => samples.reduce((total, sample) => total + pick(sample), 0);
  const known = (pick: (sample: Sample) => number | undefined) =>
    samples.flatMap((sample) => {
      const value = pick(sample);
      return value === undefined ? [] : [value];
    });
  const steals = known((s) => s.stealPct);
  const cpu = known((s) => s.serverCpuUs);
  const cpuRatios = known((s) => s.cpuRatio);
  return {
    ...endpoint,
    requests: sum((s) => s.requests),
    requestsPerSec: of((s) => s.requestsPerSec),
    p50Ms: of((s) => s.p50Ms),
    p99Ms: of((s) => s.p99Ms),
    non2xx3xx: sum((s) => s.non2xx3xx),
    socketErrors: {
      connect: sum((s) => s.socketErrors.connect),
      read: sum((s) => s.socketErrors.read),
      write: sum((s) => s.socketErrors.write),
      timeout: sum((s) => s.socketErrors.timeout),
    },
    ratioToBaseline: of((s) => s.ratio),
    stealPct: steals.length > 0 ? Math.max(...steals) : undefined,
    serverCpuUs: cpu.length > 0 ? median(cpu) : undefined,
    cpuRatio: cpuRatios.length > 0 ? median(cpuRatios) : undefined,
    roundRatios: samples.length > 1 ? samples.map((s) => s.ratio) : undefined,
  };
}
