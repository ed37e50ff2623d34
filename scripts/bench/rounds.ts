/** Folds a row's measurements (one per round) into the row the table and bench-results.json show. */
import type { Endpoint } from "./endpoint.ts";
import type { Row } from "./report.ts";
import type { WrkResult } from "./wrk.ts";

export interface Sample extends WrkResult {
  /** req/s over the baseline measured just before this sample (1 for a baseline sample). */
  ratio: number;
  stealPct: number | undefined;
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
  const steals = samples.flatMap((sample) => (sample.stealPct === undefined ? [] : [sample.stealPct]));
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
    roundRatios: samples.length > 1 ? samples.map((s) => s.ratio) : undefined,
  };
}
