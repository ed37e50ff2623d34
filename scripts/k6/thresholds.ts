/**
 * Evaluates a script's `options.thresholds` over the shim's samples, as k6 would at the end of a
 * run: `count` of `http_reqs`, `rate` of `http_req_failed` and `checks`, and the trend
 * aggregations (`p(N)`, `avg`, `min`, `max`, `med`) of `http_req_duration`.
 */
import type { CheckTally, Sample } from "./runtime";

export interface Verdict {
  threshold: string;
  expression: string;
  value: number;
  ok: boolean;
  /** Latency: what it measured here, on a machine that is not the one under test. */
  latency: boolean;
}

const OPERATORS: Record<string, (a: number, b: number) => boolean> = {
  "<": (a, b) => a < b,
  "<=": (a, b) => a <= b,
  ">": (a, b) => a > b,
  ">=": (a, b) => a >= b,
  "==": (a, b) => a === b,
  "===": (a, b) => a === b,
  "!=": (a, b) => a !== b,
};

export function evaluate(
  thresholds: Record<string, (string | { threshold: string })[]>,
  samples: Sample[],
  checks: Map<string, CheckTally>,
): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const [threshold, expressions] of Object.entries(thresholds)) {
    const name = /^([a-z_]+)(?:\{([^}]*)\})?$/.exec(threshold);
    if (!name) throw new Error(`threshold ${threshold}: not a metric name with optional {tag:value}`);
    const [, metric = "", filter] = name;
    const selected = samples.filter((sample) => matches(sample, filter));
    for (const entry of expressions) {
      const expression = typeof entry === "string" ? entry : entry.threshold;
      const parsed =
        /^\s*(count|rate|avg|min|max|med|p\((\d+(?:\.\d+)?)\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(
          expression,
        );
      if (!parsed) throw new Error(`threshold ${threshold}: cannot read "${expression}"`);
      const [, aggregation = "", percentile, operator = "", bound = ""] = parsed;
      const value = aggregate(metric, aggregation, percentile, selected, checks, threshold);
      const compare = OPERATORS[operator] as (a: number, b: number) => boolean;
      verdicts.push({
        threshold,
        expression,
        value,
        ok: compare(value, Number(bound)),
        latency: metric === "http_req_duration",
      });
    }
  }
  return verdicts;
}

function matches(sample: Sample, filter: string | undefined): boolean {
  if (!filter) return true;
  return filter.split(",").every((pair) => {
    const [tag = "", value = ""] = pair.split(":");
    return sample.tags[tag.trim()] === value.trim();
  });
}

function aggregate(
  metric: string,
  aggregation: string,
  percentile: string | undefined,
  samples: Sample[],
  checks: Map<string, CheckTally>,
  threshold: string,
): number {
  const wrong = () => new Error(`threshold ${threshold}: ${aggregation} does not apply to ${metric}`);
  switch (metric) {
    case "http_reqs":
      if (aggregation !== "count") throw wrong();
      return samples.length;
    case "http_req_failed":
      if (aggregation !== "rate") throw wrong();
      // k6's default expected statuses are 200–399; no response at all (status 0) fails too.
      return rate(samples.filter((sample) => sample.status < 200 || sample.status > 399).length, samples.length);
    case "checks": {
      if (aggregation !== "rate") throw wrong();
      const tallies = [...checks.values()];
      const passes = tallies.reduce((sum, tally) => sum + tally.passes, 0);
      return rate(passes, passes + tallies.reduce((sum, tally) => sum + tally.fails, 0));
    }
    case "http_req_duration":
      return trend(
        samples.map((sample) => sample.ms),
        aggregation,
        percentile,
      );
    default:
      throw new Error(`threshold ${threshold}: the shim does not record ${metric}`);
  }
}

function rate(hits: number, total: number): number {
  return total === 0 ? 0 : hits / total;
}

function trend(values: number[], aggregation: string, percentile: string | undefined): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (fraction: number) => sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? 0;
  if (percentile) return at(Number(percentile) / 100);
  if (aggregation === "avg") return values.reduce((sum, value) => sum + value, 0) / values.length;
  if (aggregation === "min") return sorted[0] ?? 0;
  if (aggregation === "max") return sorted[sorted.length - 1] ?? 0;
  return at(0.5);
}
