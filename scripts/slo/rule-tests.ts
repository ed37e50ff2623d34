/**
 * alerts/rules.test.yml: promtool unit tests. Every alert must fire on a synthetic burn (or
 * symptom) and stay silent on healthy traffic and on no traffic at all, except an alert on
 * absence, which must fire on no series at all.
 */
import { BURN_POLICY, burnAnnotations, errorRatioRecord, runbookUrl } from "./rules";
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

/** A stretch of synthetic traffic: `rate` events a minute for `minutes`, burning the budget `burn` times over. */
interface Phase {
  readonly minutes: number;
  readonly rate: number;
  readonly burn: number;
}

const round = (n: number) => Number(n.toPrecision(12));

/** A counter adding `perMinute(phase)` each minute of each phase in turn, in promtool notation. */
function phasedCounter(phases: readonly Phase[], perMinute: (phase: Phase) => number): string {
  let value = 0;
  const parts = ["0"];
  for (const phase of phases) {
    const step = round(perMinute(phase));
    parts.push(`${round(value + step)}+${step}x${phase.minutes - 1}`);
    value = round(value + step * phase.minutes);
  }
  return parts.join(" ");
}

/**
 * Traffic that changes over time. A constant burn puts every window at the same ratio, so every
 * pair of windows fires together and none is tested alone: a burn that starts or stops, or a
 * busy spell that dilutes the longer windows, sets the windows apart.
 */
function phasedSeries(slo: Slo, phases: readonly Phase[]) {
  const bad = (p: Phase) => p.rate * budgetOf(slo) * p.burn;
  const good = phasedCounter(phases, (p) => p.rate - bad(p));
  const total = phasedCounter(phases, (p) => p.rate);
  if (slo.kind === "ratio") {
    return [
      { series: slo.exampleGood, values: good },
      { series: slo.exampleBad, values: phasedCounter(phases, bad) },
    ];
  }
  const le = `le="${slo.threshold}"`;
  return [
    { series: `${slo.metric}_bucket{${slo.exampleMatchers},${le}}`, values: good },
    { series: `${slo.metric}_bucket{${slo.exampleMatchers},le="+Inf"}`, values: total },
    { series: `${slo.metric}_count{${slo.exampleMatchers}}`, values: total },
  ];
}

const minutesOf = (phases: readonly Phase[]) => `${phases.reduce((n, p) => n + p.minutes, 0)}m`;

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
  const page = burnAlert(spec, slo, "page");
  const ticket = burnAlert(spec, slo, "ticket");
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
    // Each pair of windows alone, 5 % over its line and 5 % under it, where no other pair of its
    // severity fires: a factor that is off by a tenth either way fails one of the two.
    ...BURN_POLICY.flatMap(({ factor, long, short }) =>
      (["over", "under"] as const).map((side) => {
        const burn = Number((factor * (side === "over" ? 1.05 : 0.95)).toPrecision(4));
        const shape = PAIR_TRAFFIC[long];
        const phases = shape.phases?.(burn);
        const fires = side === "over" ? shape.over : shape.under;
        const alerts = fires.map((severity) => (severity === "page" ? page : ticket));
        return {
          name: `${slo.name}: a ${burn}x burn${shape.context} ${side === "over" ? `fires through ${long}/${short} alone` : `stays under the ${long}/${short} line`}`,
          interval: "1m",
          input_series: phases ? phasedSeries(slo, phases) : sloSeries(slo, badPerMinute(slo, burn)),
          alert_rule_test: phases
            ? [{ eval_time: minutesOf(phases), alertname: slo.alert, exp_alerts: alerts }]
            : check(alerts),
        };
      }),
    ),
    {
      // What the short windows are for: the 6h window is still over 6x, the 30m one no longer is.
      name: `${slo.name}: a 10x burn that stopped 15 minutes ago no longer pages`,
      interval: "1m",
      input_series: phasedSeries(slo, STOPPED_BURN),
      alert_rule_test: check([ticket]),
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

/**
 * 1h and 5m at `burn`; 6h (1.5x at 15x, 1.3x at 13.7x) under 6x, 1d under 3x; 3d and 6h over 1x.
 * Burns stay at most 20x: a 95 % SLO's every event.
 */
const suddenBurn = (burn: number): readonly Phase[] => [
  { minutes: 60, rate: 10 * RATE, burn: 0 },
  { minutes: 65, rate: RATE, burn },
];
/**
 * 2h at `burn` and 1d (7.6x at 3.15x: the first burn) over 3x; 6h (0.63x at 3.15x, 0.57x at
 * 2.85x: the busy hours dilute it) under 1x, and 1h and 30m under the page lines. Ends at 370m:
 * the shortest series that sets 6h apart from 1d.
 */
const renewedBurn = (burn: number): readonly Phase[] => [
  { minutes: 10, rate: 50 * RATE, burn: 16 },
  { minutes: 240, rate: 2 * RATE, burn: 0 },
  { minutes: 120, rate: RATE, burn },
];
/** 6h at 7.7x, 30m at 5x: under 6x. 1h (7.7x) is under 14.4x; 1d and 2h stay over 3x. */
const STOPPED_BURN: readonly Phase[] = [
  { minutes: 50, rate: RATE, burn: 10 },
  { minutes: 15, rate: RATE, burn: 0 },
];

/**
 * The traffic each pair of windows is tested on, and which alerts fire 5 % over and 5 % under its
 * line: a constant burn for 6h/30m and 3d/6h (the other pair of their severity needs more), and
 * for 1h/5m and 1d/2h a burn the other pair of their severity does not see.
 */
const PAIR_TRAFFIC: Record<
  (typeof BURN_POLICY)[number]["long"],
  { context: string; phases?: (burn: number) => readonly Phase[]; over: Severity[]; under: Severity[] }
> = {
  "1h": { context: " after a busy healthy hour", phases: suddenBurn, over: ["page", "ticket"], under: ["ticket"] },
  "6h": { context: "", over: ["page", "ticket"], under: ["ticket"] },
  "1d": { context: " after a burn and four busy healthy hours", phases: renewedBurn, over: ["ticket"], under: [] },
  "3d": { context: "", over: ["ticket"], under: [] },
};
type Severity = "page" | "ticket";

const WINDOWS_FOR_NO_TRAFFIC = ["5m", "1h", "3d"] as const;

/** How many samples a promtool series notation expands to (`1x10` is eleven, `_x3` three gaps). */
export function sampleCount(values: string): number {
  return values
    .trim()
    .split(/\s+/)
    .reduce((n, token) => {
      const times = /x(\d+)$/.exec(token);
      if (!times) return n + 1;
      return n + Number(times[1]) + (token.startsWith("_") ? 0 : 1);
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
  // A case's alert: its first series' labels, in its labels and in its annotations.
  const fired = (series: Readonly<Record<string, string>>) => {
    const own = withoutDropped(labelsOf(Object.keys(series)[0] ?? ""), s.expr);
    return {
      exp_labels: { ...own, severity: s.severity },
      exp_annotations: {
        ...expected.exp_annotations,
        summary: render(s.summary, own),
        description: render(s.description, own),
      },
    };
  };
  const cases = s.cases.map((c) => ({
    name: `${s.alert}: ${c.fires ? "fires" : "stays silent"} ${c.when}`,
    interval: "1m",
    input_series: toInput(c.series),
    alert_rule_test: [
      { eval_time: evalAt(c.series), alertname: s.alert, exp_alerts: c.fires ? [fired(c.series)] : [] },
    ],
  }));
  // Checked at every evaluation: whenever the symptom is seen, it has not lasted `for` yet.
  const brief = s.brief
    ? [
        {
          name: `${s.alert}: stays silent on a symptom shorter than its for (${s.for})`,
          interval: "1m",
          input_series: toInput(s.brief),
          alert_rule_test: Array.from({ length: Number.parseInt(evalAt(s.brief), 10) / EVAL_STEP_MINUTES }, (_, i) => ({
            eval_time: `${(i + 1) * EVAL_STEP_MINUTES}m`,
            alertname: s.alert,
            exp_alerts: [],
          })),
        },
      ]
    : [];
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
      ...brief,
      ...cases,
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
    ...brief,
    ...cases,
  ];
}

export function ruleTestsFile(spec: SloSpec) {
  return {
    rule_files: ["rules.yml"],
    evaluation_interval: `${EVAL_STEP_MINUTES}m`,
    tests: [...spec.slos.flatMap((slo) => sloTests(spec, slo)), ...spec.symptoms.flatMap((s) => symptomTests(spec, s))],
  };
}
