/**
 * Runs a k6 script's requests without k6 (not a load generator): `setup()`, then each scenario's
 * function (or `default`) a few iterations in one virtual user, through a shim of the k6 modules
 * the scripts use, against a real server. Checks are tallied and the thresholds evaluated as k6
 * would, latency ones reported but not judged (one VU on a developer's machine says nothing about
 * latency under load). So a script that calls a route wrongly or misreads an answer fails here,
 * on a machine without k6.
 *
 *   BASE_URL=http://localhost:8080 API_KEY=wdn_… bun scripts/k6-dry-run.ts loadtest/smoke.js [--iterations=N] [--json]
 *
 * Exit codes as k6's: 0 passed, 99 a threshold (or an iteration) failed, 107 the script threw
 * outside an iteration (init or setup).
 */
import { dirname, resolve } from "node:path";
import { plugin } from "bun";
import { K6Runtime } from "./k6/runtime";
import { SyncFetch } from "./k6/sync-fetch";
import { evaluate, type Verdict } from "./k6/thresholds";

interface Scenario {
  exec?: string;
}

interface ScriptModule {
  options?: { iterations?: number; scenarios?: Record<string, Scenario>; thresholds?: Record<string, string[]> };
  setup?: () => unknown;
  teardown?: (data: unknown) => void;
  [exported: string]: unknown;
}

export interface DryRunReport {
  script: string;
  /** Requests by their `endpoint` tag (untagged: the method and URL). */
  requests: Record<string, { count: number; statuses: number[] }>;
  checks: Record<string, { passes: number; fails: number }>;
  thresholds: Verdict[];
  errors: string[];
  exitCode: number;
}

const args = process.argv.slice(2);
const script = args.find((arg) => !arg.startsWith("--"));
const iterationsArg = args.find((arg) => arg.startsWith("--iterations="))?.split("=")[1];
if (!script) {
  console.error("usage: bun scripts/k6-dry-run.ts <script.js> [--iterations=N] [--json]");
  process.exit(2);
}
const path = resolve(script);
const fetcher = await SyncFetch.start();
const runtime = new K6Runtime(fetcher, dirname(path));
const modules = runtime.modules();
plugin({
  name: "k6 shim",
  setup(build) {
    for (const [specifier, exports] of Object.entries(modules))
      build.module(specifier, () => ({ exports, loader: "object" }));
  },
});
Object.assign(globalThis, { __ENV: { ...process.env }, open: runtime.open, __VU: 1 });

const errors: string[] = [];
const report = (exitCode: number): DryRunReport => ({
  script,
  requests: tallyRequests(),
  checks: Object.fromEntries(runtime.checks),
  thresholds: verdicts,
  errors,
  exitCode,
});
let verdicts: Verdict[] = [];

let exitCode = 0;
try {
  const module = (await import(path)) as ScriptModule;
  const data = module.setup?.();
  for (const [name, scenario] of plan(module)) {
    const run = module[scenario.exec ?? "default"];
    if (typeof run !== "function")
      throw new Error(`scenario ${name}: the script exports no ${scenario.exec ?? "default"}`);
    const iterations = Number(iterationsArg ?? (module.options?.scenarios ? 20 : (module.options?.iterations ?? 1)));
    runtime.scenario.name = name;
    for (let iteration = 0; iteration < iterations; iteration++) {
      runtime.scenario.iterationInTest = iteration;
      try {
        run(data);
      } catch (error) {
        errors.push(`${name}, iteration ${iteration}: ${messageOf(error)}`);
      }
    }
  }
  module.teardown?.(data);
  verdicts = evaluate(module.options?.thresholds ?? {}, runtime.samples, runtime.checks);
  if (errors.length > 0 || verdicts.some((verdict) => !verdict.ok && !verdict.latency)) exitCode = 99;
} catch (error) {
  errors.push(messageOf(error));
  exitCode = 107;
} finally {
  fetcher.close();
}

const result = report(exitCode);
console.log(args.includes("--json") ? JSON.stringify(result) : describe(result));
process.exit(exitCode);

/** k6 runs `options.scenarios`, or else `default` in the shorthand's VUs and iterations. */
function plan(module: ScriptModule): [string, Scenario][] {
  return Object.entries(module.options?.scenarios ?? { default: {} });
}

function tallyRequests(): DryRunReport["requests"] {
  const requests: DryRunReport["requests"] = {};
  for (const sample of runtime.samples) {
    const key = sample.tags.endpoint ?? `${sample.method} ${sample.url}`;
    const entry = requests[key] ?? { count: 0, statuses: [] };
    requests[key] = entry;
    entry.count++;
    if (!entry.statuses.includes(sample.status)) entry.statuses.push(sample.status);
  }
  return requests;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describe(result: DryRunReport): string {
  const lines = [`${result.script}: ${result.exitCode === 0 ? "passed" : `failed (exit ${result.exitCode})`}`];
  for (const error of result.errors) lines.push(`  error: ${error}`);
  for (const [name, tally] of Object.entries(result.checks)) {
    lines.push(`  ${tally.fails === 0 ? "✓" : "✗"} check ${name}: ${tally.passes} passed, ${tally.fails} failed`);
  }
  for (const verdict of result.thresholds) {
    const mark = verdict.ok ? "✓" : verdict.latency ? "~" : "✗";
    lines.push(`  ${mark} ${verdict.threshold} ${verdict.expression} (${Number(verdict.value.toFixed(3))})`);
  }
  for (const [endpoint, entry] of Object.entries(result.requests)) {
    lines.push(`  ${endpoint}: ${entry.count} requests, statuses ${entry.statuses.join(", ")}`);
  }
  return lines.join("\n");
}
