/**
 * alerts/rules.test.yml: promtool unit tests. Every alert must fire on a synthetic burn (or
 * symptom) and stay silent on healthy traffic and on no traffic at all, except an alert on
 * absence, which must fire on no series at all.
 */
import { burnAnnotations, errorRatioRecord, runbookUrl } from "./rules";
import { budgetOf, type Slo, type SloSpec, type Symptom } from "./spec";

/** Requests per minute in the synthetic traffic. */
const RATE = 1000;
/** Two hours of one-minute samples: enough for every short window and the 1h long window. */
const MINUTES = 120;
const EVAL = "65m";
/** Rules are evaluated every 5 minutes in the tests (1 would be 5× slower for the same verdicts); eval times are multiples of it. */
const EVAL_STEP_MINUTES = 5;

/** Bad events per minute that burn the budget `burn` times as fast as the objective allows. */
const badPerMinute = (slo: Slo, burn: number) => Number((RATE * budgetOf(slo) * burn).toPrecision(10));

function counter(perMinute: number): string {
  return perMinute === 0 ? `0x${MINUTES}` : `0+${perMinute}x${MINUTES}`;
}

/** Input series for an SLO with `bad` of every RATE events per minute going wrong. */
function sloSeries(slo: Slo, bad: number, rate = RATE) {
  const good = Number((rate - bad).toPrecision(10));
  if (slo.kind === "ratio") {
    return [
      { series: slo.exampleGood, values: counter(good) },
      { series: slo.exampleBad, values: counter(bad) },
    ];
  }
  const le = `le="${slo.threshold}"`;
  return [
    { series: `${slo.metric}_bucket{${slo.exampleMatchers},${le}}`, values: counter(good) },
    { series: `${slo.metric}_bucket{${slo.exampleMatchers},le="+Inf"}`, values: counter(rate) },
    { series: `${slo.metric}_count{${slo.exampleMatchers}}`, values: counter(rate) },
  ];
}

/** No traffic but `bad` bad events, one a minute from minute 61: every window over every line. */
function fewBadEvents(slo: Slo, bad: number) {
  const steps = Array.from({ length: bad }, (_, i) => String(i + 1)).join(" ");
  const values = `0x60 ${steps} ${bad}x${MINUTES - 61 - bad}`;
  if (slo.kind === "ratio") {
    return [
      { series: slo.exampleGood, values: counter(0) },
      { series: slo.exampleBad, values },
    ];
  }
  const le = `le="${slo.threshold}"`;
  return [
    { series: `${slo.metric}_bucket{${slo.exampleMatchers},${le}}`, values: counter(0) },
    { series: `${slo.metric}_bucket{${slo.exampleMatchers},le="+Inf"}`, values },
    { series: `${slo.metric}_count{${slo.exampleMatchers}}`, values },
  ];
}

function burnAlert(spec: SloSpec, slo: Slo, severity: "page" | "ticket") {
  return { exp_labels: { slo: slo.name, severity }, exp_annotations: burnAnnotations(spec, slo, severity) };
}

function sloTests(spec: SloSpec, slo: Slo) {
  const check = (exp: ReturnType<typeof burnAlert>[]) => [{ eval_time: EVAL, alertname: slo.alert, exp_alerts: exp }];
  return [
    {
      name: `${slo.name}: a 16x burn pages (and opens a ticket)`,
      interval: "1m",
      input_series: sloSeries(slo, badPerMinute(slo, 16)),
      alert_rule_test: check([burnAlert(spec, slo, "page"), burnAlert(spec, slo, "ticket")]),
    },
    {
      name: `${slo.name}: a 4x burn opens a ticket only`,
      interval: "1m",
      input_series: sloSeries(slo, badPerMinute(slo, 4)),
      alert_rule_test: check([burnAlert(spec, slo, "ticket")]),
    },
    {
      name: `${slo.name}: healthy traffic (half the budget) stays silent`,
      interval: "1m",
      input_series: sloSeries(slo, badPerMinute(slo, 0.5)),
      alert_rule_test: check([]),
      promql_expr_test: [
        {
          // Half the budget, in units of half the budget (rounded: the histogram ratio is a difference of floats).
          expr: `round(${errorRatioRecord("1h")}{slo="${slo.name}"} / ${budgetOf(slo) * 0.5})`,
          eval_time: EVAL,
          exp_samples: [{ labels: `{slo="${slo.name}"}`, value: 1 }],
        },
      ],
    },
    {
      // Every event bad, so every window is over every line: only the count holds the alert back.
      name: `${slo.name}: fewer than min_bad_events bad events stay silent`,
      interval: "1m",
      input_series: fewBadEvents(slo, spec.minBadEvents - 1),
      alert_rule_test: check([]),
    },
    {
      name: `${slo.name}: min_bad_events bad events and nothing else page`,
      interval: "1m",
      input_series: fewBadEvents(slo, spec.minBadEvents),
      alert_rule_test: check([burnAlert(spec, slo, "page"), burnAlert(spec, slo, "ticket")]),
    },
    {
      name: `${slo.name}: no traffic records no ratio and stays silent`,
      interval: "1m",
      input_series: sloSeries(slo, 0, 0),
      alert_rule_test: check([]),
      promql_expr_test: WINDOWS_FOR_NO_TRAFFIC.map((w) => ({
        expr: `${errorRatioRecord(w)}{slo="${slo.name}"}`,
        eval_time: EVAL,
        exp_samples: [],
      })),
    },
  ];
}

const WINDOWS_FOR_NO_TRAFFIC = ["5m", "1h", "3d"] as const;

/** How many samples a promtool series notation expands to (`1x10` is eleven). */
export function sampleCount(values: string): number {
  return values
    .trim()
    .split(/\s+/)
    .reduce((n, token) => {
      const times = /x(\d+)$/.exec(token);
      return n + (times ? Number(times[1]) + 1 : 1);
    }, 0);
}

function labelsOf(selector: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [, name, value] of selector.matchAll(/(\w+)="([^"]*)"/g)) if (name) labels[name] = value ?? "";
  return labels;
}

function withoutDropped(labels: Record<string, string>, expr: string): Record<string, string> {
  const dropped =
    /\bwithout\s*\(([^)]*)\)/
      .exec(expr)?.[1]
      ?.split(",")
      .map((name) => name.trim()) ?? [];
  return Object.fromEntries(Object.entries(labels).filter(([name]) => !dropped.includes(name)));
}

function render(template: string, labels: Record<string, string>): string {
  return template.replace(/\{\{\s*\$labels\.(\w+)\s*\}\}/g, (_, name: string) => labels[name] ?? "");
}

function symptomTests(spec: SloSpec, s: Symptom) {
  const toInput = (series: Readonly<Record<string, string>>) =>
    Object.entries(series).map(([selector, values]) => ({ series: selector, values }));
  const evalAt = (series: Readonly<Record<string, string>>) =>
    `${Math.floor((Math.min(...Object.values(series).map(sampleCount)) - 1) / EVAL_STEP_MINUTES) * EVAL_STEP_MINUTES}m`;
  // promtool needs some input; a series no rule reads.
  const nothing = [{ series: `unrelated_metric{job="${spec.job}"}`, values: "1x40" }];
  const nothingAt = evalAt({ unrelated: "1x40" });
  // An alert on absence carries its expression's matchers as labels (what `absent()` returns);
  // others, their series' labels less those an aggregation drops (`max without (instance)`).
  const labels = s.absent ? labelsOf(s.expr) : withoutDropped(labelsOf(Object.keys(s.firing)[0] ?? ""), s.expr);
  const expected = {
    exp_labels: { ...labels, severity: s.severity },
    exp_annotations: {
      summary: render(s.summary, labels),
      description: render(s.description, labels),
      runbook_url: runbookUrl(spec, s.alert),
    },
  };
  const healthy = {
    name: `${s.alert}: stays silent when healthy`,
    interval: "1m",
    input_series: toInput(s.healthy),
    alert_rule_test: [{ eval_time: evalAt(s.healthy), alertname: s.alert, exp_alerts: [] }],
  };
  if (s.absent) {
    return [
      {
        name: `${s.alert}: fires with no series at all`,
        interval: "1m",
        input_series: nothing,
        alert_rule_test: [{ eval_time: nothingAt, alertname: s.alert, exp_alerts: [expected] }],
      },
      healthy,
    ];
  }
  const at = evalAt(s.firing);
  return [
    {
      name: `${s.alert}: fires on the symptom`,
      interval: "1m",
      input_series: toInput(s.firing),
      alert_rule_test: [{ eval_time: at, alertname: s.alert, exp_alerts: [expected] }],
    },
    healthy,
    {
      name: `${s.alert}: stays silent with no series at all`,
      interval: "1m",
      input_series: nothing,
      alert_rule_test: [{ eval_time: at, alertname: s.alert, exp_alerts: [] }],
    },
  ];
}

export function ruleTestsFile(spec: SloSpec) {
  return {
    rule_files: ["rules.yml"],
    evaluation_interval: `${EVAL_STEP_MINUTES}m`,
    tests: [...spec.slos.flatMap((slo) => sloTests(spec, slo)), ...spec.symptoms.flatMap((s) => symptomTests(spec, s))],
  };
}
