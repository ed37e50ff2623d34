/** loadtest/thresholds.json: k6 thresholds per script, from the SLOs' k6 targets. */
import type { K6Target, SloSpec } from "./spec";
import { K6_SCRIPTS } from "./spec";

type Threshold = string | { threshold: string; abortOnFail: boolean; delayAbortEval: string };

const ms = (seconds: number) => Number((seconds * 1000).toPrecision(6));

export function thresholdsFile(spec: SloSpec): Record<string, Record<string, Threshold[]>> {
  const targets = new Map<string, K6Target>();
  for (const slo of spec.slos) for (const [endpoint, target] of Object.entries(slo.k6)) targets.set(endpoint, target);

  const out: Record<string, Record<string, Threshold[]>> = {};
  for (const script of K6_SCRIPTS) {
    // A stress run ramps until the latency targets break: that rate is the knee, so stop there.
    const latency = (expr: string): Threshold =>
      script === "stress" ? { threshold: expr, abortOnFail: true, delayAbortEval: "30s" } : expr;
    const thresholds: Record<string, Threshold[]> = {
      checks: [script === "smoke" ? "rate==1" : `rate>${1 - spec.k6.failedRate}`],
      http_req_failed: [script === "smoke" ? "rate==0" : `rate<${spec.k6.failedRate}`],
    };
    for (const endpoint of [...(spec.k6.scripts[script] ?? [])].sort()) {
      const target = targets.get(endpoint);
      const percentiles: Threshold[] = [];
      if (target?.p95 !== undefined) percentiles.push(latency(`p(95)<${ms(target.p95)}`));
      if (target?.p99 !== undefined) percentiles.push(latency(`p(99)<${ms(target.p99)}`));
      if (percentiles.length > 0) thresholds[`http_req_duration{endpoint:${endpoint}}`] = percentiles;
      // Without traffic a percentile threshold passes vacuously: demand that the endpoint was called.
      thresholds[`http_reqs{endpoint:${endpoint}}`] = ["count>0"];
    }
    out[script] = thresholds;
  }
  return out;
}
