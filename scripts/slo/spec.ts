/** alerts/slos.yaml, read and checked: everything the generators need, or an error naming the bad field. */

export interface K6Target {
  readonly p95?: number;
  readonly p99?: number;
}

interface SloBase {
  readonly name: string;
  readonly alert: string;
  readonly summary: string;
  readonly description: string;
  readonly objective: number;
  readonly window: string;
  readonly k6: Readonly<Record<string, K6Target>>;
}

export interface RatioSlo extends SloBase {
  readonly kind: "ratio";
  readonly errors: string;
  readonly total: string;
  readonly exampleGood: string;
  readonly exampleBad: string;
}

export interface LatencySlo extends SloBase {
  readonly kind: "latency";
  readonly metric: string;
  /** Label matchers without braces: `job="warden",route="/x"`. */
  readonly matchers: string;
  readonly threshold: number;
  readonly exampleMatchers: string;
}

export type Slo = RatioSlo | LatencySlo;

export interface Symptom {
  readonly alert: string;
  readonly severity: "page" | "ticket";
  readonly expr: string;
  readonly for?: string;
  readonly summary: string;
  readonly description: string;
  readonly healthy: Readonly<Record<string, string>>;
  /**
   * The series it fires on; none for an alert on absence (`absent: true`), which must fire when
   * there is no series at all, with the labels of its expression's matchers.
   */
  readonly firing: Readonly<Record<string, string>>;
  readonly absent: boolean;
  /** With `for`: the symptom for less than that, on which the alert must never fire. */
  readonly brief?: Readonly<Record<string, string>>;
  /** More series it must fire or stay silent on: a guard in its expression, each signal of an `or`. */
  readonly cases: readonly SymptomCase[];
}

export interface SymptomCase {
  readonly fires: boolean;
  /** Completes the test's name: "fires …" or "stays silent …". */
  readonly when: string;
  readonly series: Readonly<Record<string, string>>;
}

export interface SloSpec {
  readonly job: string;
  readonly runbookUrl: string;
  /** Bad events a burn-rate alert's long window must hold before it fires (one error at low traffic is no burn). */
  readonly minBadEvents: number;
  readonly slos: readonly Slo[];
  readonly symptoms: readonly Symptom[];
  readonly k6: { readonly failedRate: number; readonly scripts: Readonly<Record<string, readonly string[]>> };
}

export const K6_SCRIPTS = ["smoke", "load", "stress", "soak"] as const;
const ALERT_NAME = /^[A-Z][A-Za-z0-9]*$/;
const SLO_NAME = /^[a-z][a-z0-9-]*$/;
const DURATION = /^\d+[smhd]$/;

class SpecError extends Error {}

type Obj = Record<string, unknown>;

function obj(value: unknown, path: string): Obj {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new SpecError(`${path}: expected a mapping`);
  return value as Obj;
}

function str(o: Obj, key: string, path: string, pattern?: RegExp): string {
  const value = o[key];
  if (typeof value !== "string" || value.trim() === "")
    throw new SpecError(`${path}.${key}: expected a non-empty string`);
  if (pattern && !pattern.test(value)) throw new SpecError(`${path}.${key}: "${value}" does not match ${pattern}`);
  return value;
}

function num(o: Obj, key: string, path: string, min: number, max: number, exclusive = false): number {
  const value = o[key];
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max || (exclusive && value >= max))
    throw new SpecError(`${path}.${key}: expected a number in [${min}, ${max}${exclusive ? ")" : "]"}`);
  return value;
}

/** promtool series notation, one value per key: `'name{l="v"}': 1x10 0x20`. */
function series(value: unknown, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [selector, values] of Object.entries(obj(value, path))) {
    if (!/^[a-z_:][a-z0-9_:]*\{.*\}$/i.test(selector))
      throw new SpecError(`${path}: "${selector}" is not name{labels}`);
    // Unquoted, `0x30` (thirty-one zeros) is read as the number 48.
    if (typeof values !== "string") throw new SpecError(`${path}: quote the values of "${selector}"`);
    out[selector] = values;
  }
  if (Object.keys(out).length === 0) throw new SpecError(`${path}: expected at least one series`);
  return out;
}

function braces(selector: string, path: string): string {
  const match = /^\{(.+)\}$/.exec(selector.trim());
  if (!match?.[1]) throw new SpecError(`${path}: expected {label matchers}`);
  return match[1];
}

function k6Targets(value: unknown, path: string): Record<string, K6Target> {
  if (value === undefined) return {};
  const out: Record<string, K6Target> = {};
  for (const [endpoint, raw] of Object.entries(obj(value, path))) {
    const target = obj(raw, `${path}.${endpoint}`);
    const p95 = target.p95 === undefined ? undefined : num(target, "p95", `${path}.${endpoint}`, 0, 60);
    const p99 = target.p99 === undefined ? undefined : num(target, "p99", `${path}.${endpoint}`, 0, 60);
    out[endpoint] = { ...(p95 === undefined ? {} : { p95 }), ...(p99 === undefined ? {} : { p99 }) };
  }
  return out;
}

function parseSlo(raw: unknown, path: string): Slo {
  const o = obj(raw, path);
  const base = {
    name: str(o, "name", path, SLO_NAME),
    alert: str(o, "alert", path, ALERT_NAME),
    summary: str(o, "summary", path),
    description: str(o, "description", path),
    objective: num(o, "objective", path, 0.5, 1, true),
    window: str(o, "window", path, DURATION),
    k6: k6Targets(o.k6, `${path}.k6`),
  };
  // The burn-rate factors are fractions of a 30-day budget.
  if (base.window !== "30d") throw new SpecError(`${path}.window: the burn-rate policy assumes 30d`);
  if (o.ratio !== undefined && o.latency !== undefined)
    throw new SpecError(`${path}: either ratio or latency, not both`);
  if (o.ratio !== undefined) {
    const r = obj(o.ratio, `${path}.ratio`);
    return {
      ...base,
      kind: "ratio",
      errors: str(r, "errors", `${path}.ratio`),
      total: str(r, "total", `${path}.ratio`),
      exampleGood: str(r, "example_good", `${path}.ratio`),
      exampleBad: str(r, "example_bad", `${path}.ratio`),
    };
  }
  if (o.latency !== undefined) {
    const l = obj(o.latency, `${path}.latency`);
    return {
      ...base,
      kind: "latency",
      metric: str(l, "metric", `${path}.latency`, /^[a-z_:][a-z0-9_:]*$/),
      matchers: braces(str(l, "selector", `${path}.latency`), `${path}.latency.selector`),
      threshold: num(l, "threshold", `${path}.latency`, 0, 86_400),
      exampleMatchers: braces(str(l, "example", `${path}.latency`), `${path}.latency.example`),
    };
  }
  throw new SpecError(`${path}: needs ratio or latency`);
}

function parseSymptom(raw: unknown, path: string): Symptom {
  const o = obj(raw, path);
  const severity = str(o, "severity", path);
  if (severity !== "page" && severity !== "ticket") throw new SpecError(`${path}.severity: page or ticket`);
  if (o.absent !== undefined && typeof o.absent !== "boolean") throw new SpecError(`${path}.absent: true or false`);
  const absent = o.absent === true;
  if (absent && o.firing !== undefined) throw new SpecError(`${path}.firing: an alert on absence fires on no series`);
  for (const key of ["summary", "description"]) {
    const text = str(o, key, path);
    // Only $labels are rendered in the generated tests' expected annotations.
    if (/\{\{(?!\s*\$labels\.\w+\s*\}\})/.test(text))
      throw new SpecError(`${path}.${key}: only {{ $labels.<name> }} templates are allowed`);
  }
  // An alert with `for` that fires at once passes every other test: only a brief symptom tells.
  if ((o.for === undefined) !== (o.brief === undefined))
    throw new SpecError(`${path}.brief: the symptom shorter than \`for\`, needed with \`for\` and only then`);
  if (o.cases !== undefined && !Array.isArray(o.cases)) throw new SpecError(`${path}.cases: expected a list`);
  const cases = ((o.cases ?? []) as unknown[]).map((raw, i) => {
    const c = obj(raw, `${path}.cases[${i}]`);
    if (typeof c.fires !== "boolean") throw new SpecError(`${path}.cases[${i}].fires: true or false`);
    return {
      fires: c.fires,
      when: str(c, "when", `${path}.cases[${i}]`),
      series: series(c.series, `${path}.cases[${i}].series`),
    };
  });
  return {
    alert: str(o, "alert", path, ALERT_NAME),
    severity,
    expr: str(o, "expr", path),
    ...(o.for === undefined ? {} : { for: str(o, "for", path, DURATION) }),
    summary: str(o, "summary", path),
    description: str(o, "description", path),
    healthy: series(o.healthy, `${path}.healthy`),
    firing: absent ? {} : series(o.firing, `${path}.firing`),
    absent,
    ...(o.brief === undefined ? {} : { brief: series(o.brief, `${path}.brief`) }),
    cases,
  };
}

function positiveInteger(raw: unknown, path: string): number {
  if (typeof raw !== "number" || !Number.isInteger(raw) || raw < 1) throw new SpecError(`${path}: a positive integer`);
  return raw;
}

export function parseSpec(raw: unknown): SloSpec {
  const root = obj(raw, "slos.yaml");
  const slosRaw = root.slos;
  const symptomsRaw = root.symptoms;
  if (!Array.isArray(slosRaw) || slosRaw.length === 0) throw new SpecError("slos: expected a non-empty list");
  if (!Array.isArray(symptomsRaw)) throw new SpecError("symptoms: expected a list");
  const slos = slosRaw.map((s, i) => parseSlo(s, `slos[${i}]`));
  const symptoms = symptomsRaw.map((s, i) => parseSymptom(s, `symptoms[${i}]`));

  const alerts = [...slos.map((s) => s.alert), ...symptoms.map((s) => s.alert)];
  const dup = alerts.find((a, i) => alerts.indexOf(a) !== i);
  if (dup) throw new SpecError(`alert name ${dup} is used twice`);
  const names = slos.map((s) => s.name);
  const dupSlo = names.find((n, i) => names.indexOf(n) !== i);
  if (dupSlo) throw new SpecError(`slo name ${dupSlo} is used twice`);

  const k6 = obj(root.k6, "k6");
  const scriptsRaw = obj(k6.scripts, "k6.scripts");
  const scripts: Record<string, string[]> = {};
  for (const script of K6_SCRIPTS) {
    const list = scriptsRaw[script];
    if (!Array.isArray(list) || list.length === 0 || !list.every((e) => typeof e === "string" && /^[a-z_]+$/.test(e)))
      throw new SpecError(`k6.scripts.${script}: expected a list of endpoint tags`);
    scripts[script] = list as string[];
  }
  const exercised = new Set(Object.values(scripts).flat());
  for (const slo of slos) {
    for (const endpoint of Object.keys(slo.k6)) {
      if (!exercised.has(endpoint))
        throw new SpecError(`slos ${slo.name}: k6 endpoint ${endpoint} is in no script of k6.scripts`);
    }
  }
  return {
    job: str(root, "job", "slos.yaml"),
    runbookUrl: str(root, "runbook_url", "slos.yaml", /^https?:\/\//),
    minBadEvents: positiveInteger(root.min_bad_events, "min_bad_events"),
    slos,
    symptoms,
    k6: { failedRate: num(k6, "failed_rate", "k6", 0, 1), scripts },
  };
}

export async function loadSpec(file: string): Promise<SloSpec> {
  return parseSpec(Bun.YAML.parse(await Bun.file(file).text()));
}

export const budgetOf = (slo: Slo) => Number((1 - slo.objective).toPrecision(12));
export const runbookAnchor = (alert: string) => alert.toLowerCase();
