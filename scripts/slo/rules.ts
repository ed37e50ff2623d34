/** Prometheus recording rules and multi-window, multi-burn-rate alerts (SRE workbook, ch. 5) for every SLO. */
import { budgetOf, runbookAnchor, type Slo, type SloSpec, type Symptom } from "./spec";

export const WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] as const;
export type Window = (typeof WINDOWS)[number];

/** Each alert pairs a long window (the budget really burns) with a short one (it still burns now). */
export const BURN_POLICY = [
  { severity: "page", factor: 14.4, long: "1h", short: "5m" },
  { severity: "page", factor: 6, long: "6h", short: "30m" },
  { severity: "ticket", factor: 3, long: "1d", short: "2h" },
  { severity: "ticket", factor: 1, long: "3d", short: "6h" },
] as const satisfies readonly { severity: string; factor: number; long: Window; short: Window }[];

export const errorRatioRecord = (window: Window) => `slo:sli_error:ratio_rate${window}`;

/** Prometheus 3 writes integer bucket bounds as "1.0"; older servers and prom-client write "1". */
export function leMatcher(threshold: number): string {
  return Number.isInteger(threshold) ? `le=~"${threshold}|${threshold}.0"` : `le="${threshold}"`;
}

function withMatchers(metric: string, matchers: string): string {
  return `${metric}{${matchers}}`;
}

/**
 * The share of bad events over `window`. Divided by the total only where it is above zero, so an
 * idle service records no ratio at all (instead of NaN or 0) and no burn alert can fire on it.
 */
export function errorRatioExpr(slo: Slo, window: Window): string {
  if (slo.kind === "ratio") {
    return `(sum(rate(${slo.errors}[${window}])) or vector(0)) / (sum(rate(${slo.total}[${window}])) > 0)`;
  }
  const count = `sum(rate(${withMatchers(`${slo.metric}_count`, slo.matchers)}[${window}]))`;
  const fast = `sum(rate(${withMatchers(`${slo.metric}_bucket`, `${slo.matchers},${leMatcher(slo.threshold)}`)}[${window}]))`;
  return `(${count} - ${fast}) / (${count} > 0)`;
}

/** How many bad events `window` holds. */
export function badEventsExpr(slo: Slo, window: Window): string {
  if (slo.kind === "ratio") return `sum(increase(${slo.errors}[${window}]))`;
  const count = `sum(increase(${withMatchers(`${slo.metric}_count`, slo.matchers)}[${window}]))`;
  const fast = `sum(increase(${withMatchers(`${slo.metric}_bucket`, `${slo.matchers},${leMatcher(slo.threshold)}`)}[${window}]))`;
  return `(${count} - ${fast})`;
}

/**
 * Both windows over the factor, and at least `minBadEvents` bad events in the long one: at a
 * request a minute a single 500 is 1.7 % of an hour, over a 99.9 % SLO's 14.4× line, and would
 * page on its own.
 */
function burnAlertExpr(spec: SloSpec, slo: Slo, severity: "page" | "ticket"): string {
  const budget = budgetOf(slo);
  return BURN_POLICY.filter((p) => p.severity === severity)
    .map(({ factor, long, short }) => {
      const over = (w: Window) => `${errorRatioRecord(w)}{slo="${slo.name}"} > (${factor} * ${budget})`;
      return `(${over(long)} and ${over(short)} and on () ${badEventsExpr(slo, long)} >= ${spec.minBadEvents})`;
    })
    .join(" or ");
}

const percent = (ratio: number) => `${Number((ratio * 100).toPrecision(6))} %`;

export function runbookUrl(spec: SloSpec, alert: string): string {
  return `${spec.runbookUrl}#${runbookAnchor(alert)}`;
}

export function burnAnnotations(spec: SloSpec, slo: Slo, severity: "page" | "ticket") {
  const pace = severity === "page" ? "fast enough to exhaust it within days" : "faster than it can last the window";
  return {
    summary: `${slo.summary} (${slo.name} error budget burning)`,
    description: `${slo.description} Objective ${percent(slo.objective)} over ${slo.window}; the error budget (${percent(budgetOf(slo))}) is being spent ${pace}.`,
    runbook_url: runbookUrl(spec, slo.alert),
  };
}

function symptomRule(spec: SloSpec, s: Symptom) {
  return {
    alert: s.alert,
    expr: s.expr,
    ...(s.for ? { for: s.for } : {}),
    labels: { severity: s.severity },
    annotations: { summary: s.summary, description: s.description, runbook_url: runbookUrl(spec, s.alert) },
  };
}

/** alerts/rules.yml as an object: one group per SLO (records first, so its alerts read fresh values), then the symptoms. */
export function rulesFile(spec: SloSpec) {
  const groups = spec.slos.map((slo) => ({
    name: `slo-${slo.name}`,
    rules: [
      ...WINDOWS.map((window) => ({
        record: errorRatioRecord(window),
        expr: errorRatioExpr(slo, window),
        labels: { slo: slo.name },
      })),
      ...(["page", "ticket"] as const).map((severity) => ({
        alert: slo.alert,
        expr: burnAlertExpr(spec, slo, severity),
        labels: { severity },
        annotations: burnAnnotations(spec, slo, severity),
      })),
    ],
  }));
  return { groups: [...groups, { name: "warden-symptoms", rules: spec.symptoms.map((s) => symptomRule(spec, s)) }] };
}
