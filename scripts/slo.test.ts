import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type client from "prom-client";
import { createMetrics } from "../src/plugins/metrics";
import { promtool } from "../src/testing/tools";
import { ROOT, SPEC_FILE, writeGenerated } from "./slo";
import { dashboardExpressions, dashboardFile } from "./slo/dashboard";
import { BURN_POLICY, rulesFile } from "./slo/rules";
import { loadSpec, parseSpec, runbookAnchor } from "./slo/spec";
import { toYaml } from "./slo/yaml";

const spec = await loadSpec(SPEC_FILE);
const tmp = mkdtempSync(join(tmpdir(), "warden-slo-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("bun run slo", () => {
  test("should leave every committed generated file as it is (run `bun run slo` and commit if this fails)", async () => {
    const files = await writeGenerated(join(tmp, "gen"));
    expect(files.length).toBe(4);
    const stale = files.filter(
      (path) => readFileSync(join(tmp, "gen", path), "utf8") !== readFileSync(join(ROOT, path), "utf8"),
    );
    expect(stale).toEqual([]);
  });

  test("should generate the same bytes twice", async () => {
    await writeGenerated(join(tmp, "again"));
    for (const path of ["alerts/rules.yml", "alerts/rules.test.yml", "alerts/dashboard.json"]) {
      expect(readFileSync(join(tmp, "again", path), "utf8")).toBe(readFileSync(join(tmp, "gen", path), "utf8"));
    }
  });

  test("should write YAML that reads back as the rules it was generated from", () => {
    expect(Bun.YAML.parse(readFileSync(join(ROOT, "alerts/rules.yml"), "utf8"))).toEqual(
      JSON.parse(JSON.stringify(rulesFile(spec))),
    );
    const tricky = { "a b": ["it's", "true", "1", "x:y", "", 0.5, null, [], {}], nested: [{ k: { l: "v" } }] };
    expect(Bun.YAML.parse(toYaml(tricky))).toEqual(tricky);
  });

  test("should refuse a spec with a bad field, naming it", () => {
    const raw = Bun.YAML.parse(readFileSync(SPEC_FILE, "utf8")) as { slos: { window: string }[] };
    const first = raw.slos[0];
    if (!first) throw new Error("slos.yaml has no SLO");
    first.window = "28d";
    expect(() => parseSpec(raw)).toThrow("slos[0].window");
  });

  test("should refuse an alert with `for` and no brief symptom to stay silent on, and unquoted series values", () => {
    type Raw = { symptoms: { for?: string; brief?: unknown; healthy: Record<string, unknown> }[] };
    const raw = Bun.YAML.parse(readFileSync(SPEC_FILE, "utf8")) as Raw;
    const index = raw.symptoms.findIndex((symptom) => symptom.for !== undefined);
    const withFor = raw.symptoms[index];
    if (!withFor) throw new Error("slos.yaml has no alert with for");
    delete withFor.brief;
    expect(() => parseSpec(raw)).toThrow(`symptoms[${index}].brief`);
    const again = Bun.YAML.parse(readFileSync(SPEC_FILE, "utf8")) as Raw;
    const first = again.symptoms[0];
    if (!first) throw new Error("slos.yaml has no symptom");
    first.healthy = Bun.YAML.parse("{ 'up{}': 0x30 }") as Record<string, unknown>;
    expect(() => parseSpec(again)).toThrow("symptoms[0].healthy");
  });

  test("should refuse an alert on absence that names series it fires on", () => {
    const raw = Bun.YAML.parse(readFileSync(SPEC_FILE, "utf8")) as {
      symptoms: { absent?: boolean; firing?: unknown }[];
    };
    const index = raw.symptoms.findIndex((symptom) => symptom.absent === true);
    const absent = raw.symptoms[index];
    if (!absent) throw new Error("slos.yaml has no alert on absence");
    absent.firing = { 'up{job="warden"}': "1x10" };
    expect(() => parseSpec(raw)).toThrow(`symptoms[${index}].firing`);
  });
});

describe("alerts/rules.yml", () => {
  test("should pass promtool check rules", async () => {
    const result = await promtool(["check", "rules", join(ROOT, "alerts/rules.yml")]);
    expect(result.output).toContain("SUCCESS");
    expect(result.code).toBe(0);
  });

  test("should pass its promtool unit tests (every alert fires on a burn, silent when healthy or idle)", async () => {
    const result = await promtool(["test", "rules", join(ROOT, "alerts/rules.test.yml")]);
    expect(result.output).toContain("SUCCESS");
    expect(result.code).toBe(0);
  }, 90_000);

  /**
   * The committed unit tests whose name contains `failing`, run against rules changed by `mutate`:
   * the names of those that failed, and how many ran. Only those: the whole file takes half a
   * minute, and a test that fails alone fails in the whole file too.
   */
  const againstMutant = async (name: string, mutate: (rules: string) => string, failing: string) => {
    const dir = join(tmp, name);
    const unitTests = Bun.YAML.parse(readFileSync(join(ROOT, "alerts/rules.test.yml"), "utf8")) as {
      tests: { name: string }[];
    };
    const selected = unitTests.tests.filter((unitTest) => unitTest.name.includes(failing));
    await Bun.write(join(dir, "rules.yml"), mutate(readFileSync(join(ROOT, "alerts/rules.yml"), "utf8")));
    await Bun.write(join(dir, "rules.test.yml"), toYaml({ ...unitTests, tests: selected }));
    const result = await promtool(["test", "rules", join(dir, "rules.test.yml")]);
    const failed = new Set([...result.output.matchAll(/^\s*name: (.*),$/gm)].map((m) => m[1]));
    return { ...result, failed: [...failed].sort(), selected: selected.map((t) => t.name).sort() };
  };

  const rulesOf = (rules: string) => Bun.YAML.parse(rules) as { groups: { rules: Record<string, unknown>[] }[] };
  /** A mutation of one alert's expression (the same text may occur in another alert). */
  const inAlert = (alert: string, change: (expr: string) => string) => (rules: string) => {
    const parsed = rulesOf(rules);
    for (const rule of parsed.groups.flatMap((g) => g.rules)) {
      if (rule.alert !== alert) continue;
      const changed = change(String(rule.expr));
      if (changed === rule.expr) throw new Error(`${alert}: the mutation changed nothing`);
      rule.expr = changed;
    }
    return toYaml(parsed as Parameters<typeof toYaml>[0]);
  };

  // The same tests against rules that are wrong must fail, every one of them: they test something.
  test.each([
    // A tenth off either way: past the burn 5 % over the line that the pair alone fires on, or
    // under the one 5 % under it that it must not.
    ...BURN_POLICY.flatMap(({ factor, long, short }): [string, (rules: string) => string, string][] => [
      [
        `a ${long}/${short} factor a tenth too high`,
        (rules) => rules.replaceAll(`(${factor} * `, `(${Number((factor * 1.1).toPrecision(4))} * `),
        `through ${long}/${short} alone`,
      ],
      [
        `a ${long}/${short} factor a tenth too low`,
        (rules) => rules.replaceAll(`(${factor} * `, `(${Number((factor * 0.9).toPrecision(4))} * `),
        `under the ${long}/${short} line`,
      ],
    ]),
    [
      "burn alerts without their short windows",
      (rules: string) => rules.replaceAll(/ and slo:sli_error:ratio_rate\w+\{[^}]*\} > \([^)]*\)/g, ""),
      "stopped 15 minutes ago no longer pages",
    ],
    [
      "a burn alert firing on a handful of errors",
      (rules: string) => rules.replaceAll(") >= 5)", ") >= 0)"),
      "fewer than min_bad_events bad events stay silent",
    ],
    [
      "alerts without their for",
      (rules: string) => rules.replaceAll(/^ +for: \S+\n/gm, ""),
      "stays silent on a symptom shorter than its for",
    ],
    [
      "AuditChainBroken without its guard",
      inAlert("AuditChainBroken", (expr) => expr.replace(/ and audit_chain_last_verify_timestamp_seconds\S* > 0$/, "")),
      "AuditChainBroken: stays silent before the first verification",
    ],
    [
      "AuditChainVerificationStale without its guard",
      inAlert("AuditChainVerificationStale", (expr) => expr.replace(/ > 0 or on \(job, instance\) \S+\)/, ")")),
      "AuditChainVerificationStale: stays silent before the first verification",
    ],
    [
      "AuditChainVerificationStale counting from the process's start before its last verification",
      inAlert(
        "AuditChainVerificationStale",
        () =>
          'time() - (process_start_time_seconds{job="warden"} or on (job, instance) audit_chain_last_verify_timestamp_seconds{job="warden"} > 0) > 3600',
      ),
      "AuditChainVerificationStale: stays silent when healthy",
    ],
    [
      "AuditChainVerificationStale matching instances by job alone",
      inAlert("AuditChainVerificationStale", (expr) => expr.replace("on (job, instance)", "on (job)")),
      "AuditChainVerificationStale: fires for the one instance whose first verification never ends",
    ],
    [
      "AuditChainVerificationStale without the process's start to count from",
      inAlert("AuditChainVerificationStale", (expr) => expr.replace(/ or on \(job, instance\) \S+\)/, ")")),
      "AuditChainVerificationStale: fires when a process's first verification never ends",
    ],
    [
      "FeedbackSpoolStuck without its Redis guard",
      inAlert("FeedbackSpoolStuck", (expr) => expr.replace(/ and on \(job, instance\) redis_up\S* == 1$/, "")),
      "FeedbackSpoolStuck: stays silent while Redis is down",
    ],
    [
      "RedisFallbackActive needing both signals",
      inAlert("RedisFallbackActive", (expr) => expr.replace(" or ", " and ")),
      "RedisFallbackActive: fires with",
    ],
    [
      "an alert on absence that does not fire on no series",
      (rules: string) => rules.replace('absent(up{job="warden"})', 'absent(up{job="warden"}) and on () vector(0) > 1'),
      "WardenAbsent: fires with no series at all",
    ],
  ])(
    "should have unit tests that fail on %s",
    async (name, mutate, failing) => {
      const result = await againstMutant(name.replaceAll(" ", "-"), mutate, failing);
      expect(result.selected.length).toBeGreaterThan(0);
      expect(result.code).not.toBe(0);
      expect(result.failed).toEqual(result.selected);
    },
    90_000,
  );

  test("should link every alert to its own section of alerts/RUNBOOK.md", () => {
    const runbook = readFileSync(join(ROOT, "alerts/RUNBOOK.md"), "utf8");
    const headings = new Set([...runbook.matchAll(/^## (\S+)$/gm)].map((m) => runbookAnchor(m[1] ?? "")));
    const alerts = [...spec.slos.map((s) => s.alert), ...spec.symptoms.map((s) => s.alert)];
    expect(alerts.filter((alert) => !headings.has(runbookAnchor(alert)))).toEqual([]);
    const rules = Bun.YAML.parse(readFileSync(join(ROOT, "alerts/rules.yml"), "utf8")) as {
      groups: { rules: { alert?: string; annotations?: { runbook_url: string } }[] }[];
    };
    const urls = rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.annotations?.runbook_url] : [])));
    expect(urls.length).toBe(spec.slos.length * 2 + spec.symptoms.length);
    for (const url of urls) {
      expect(url).toStartWith(spec.runbookUrl);
      expect(headings.has(url?.split("#")[1] ?? "")).toBe(true);
    }
  });

  test("should use latency thresholds that are bucket bounds of the declared histograms", () => {
    const { registry } = createMetrics();
    const latency = spec.slos.flatMap((s) => (s.kind === "latency" ? [s] : []));
    const checked = latency.filter((slo) => {
      // A histogram built on another branch is checked once it is declared here.
      const metric = registry.getSingleMetric(slo.metric) as
        | (client.Histogram & { upperBounds?: number[] })
        | undefined;
      if (!metric) return false;
      expect(metric.upperBounds, `${slo.name}: ${slo.threshold}s is not a bucket of ${slo.metric}`).toContain(
        slo.threshold,
      );
      return true;
    });
    expect(checked.map((s) => s.metric)).toContain("http_request_duration_seconds");
  });
});

describe("alerts/dashboard.json", () => {
  const dashboard = dashboardFile(spec);
  const exprs = dashboardExpressions(dashboard);

  const asRuleFile = (expressions: string[]) =>
    Bun.YAML.stringify({
      groups: [{ name: "dashboard", rules: expressions.map((expr, i) => ({ record: `dashboard:panel_${i}`, expr })) }],
    });

  test("should have every panel query parsed by promtool", async () => {
    expect(exprs.length).toBeGreaterThan(20);
    await Bun.write(join(tmp, "dashboard-rules.yml"), asRuleFile(exprs));
    const result = await promtool(["check", "rules", join(tmp, "dashboard-rules.yml")]);
    expect(result.output).toContain(`SUCCESS: ${exprs.length} rules found`);
    expect(result.code).toBe(0);
  });

  test("should have a check that catches a query that does not parse", async () => {
    await Bun.write(join(tmp, "broken-rules.yml"), asRuleFile([...exprs, "sum by (route (rate(x[5m]))"]));
    const result = await promtool(["check", "rules", join(tmp, "broken-rules.yml")]);
    expect(result.code).not.toBe(0);
  });

  test("should show golden signals by route, SLO burn, webhook queue depth and the false-positive rate", () => {
    const all = exprs.join("\n");
    expect(all).toContain("sum by (route) (rate(http_requests_total");
    for (const slo of spec.slos) expect(all).toContain(`slo:sli_error:ratio_rate1h{slo="${slo.name}"}`);
    expect(all).toContain("webhook_queue_depth");
    expect(all).toContain('verdict="false_positive"');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test("should take the max of gauges every instance reads from the shared database, never their sum", () => {
    for (const gauge of ["webhook_queue_depth", "feedback_spool_depth", "webhook_overdue_seconds"]) {
      const using = exprs.filter((expr) => expr.includes(gauge));
      expect(using.length, gauge).toBeGreaterThan(0);
      for (const expr of using) expect(expr, gauge).toMatch(new RegExp(`^max( by \\([^)]*\\) )?\\(${gauge}\\{`));
    }
  });
});

describe("loadtest/thresholds.json", () => {
  const thresholds = JSON.parse(readFileSync(join(ROOT, "loadtest/thresholds.json"), "utf8")) as Record<
    string,
    Record<string, unknown[]>
  >;

  test("should guard every endpoint of every script with count>0, and tag it in that script", () => {
    for (const [script, endpoints] of Object.entries(spec.k6.scripts)) {
      const source = readFileSync(join(ROOT, "loadtest", `${script}.js`), "utf8");
      const shared = readFileSync(join(ROOT, "loadtest", "lib.js"), "utf8");
      for (const endpoint of endpoints) {
        expect(thresholds[script]?.[`http_reqs{endpoint:${endpoint}}`]).toEqual(["count>0"]);
        expect(`${source}\n${shared}`, `${script}.js never tags "${endpoint}"`).toContain(`"${endpoint}"`);
      }
    }
  });

  test("should carry each SLO's k6 latency targets in milliseconds", () => {
    expect(thresholds.load?.["http_req_duration{endpoint:auth_me}"]).toEqual(["p(95)<25", "p(99)<50"]);
    expect(thresholds.load?.http_req_failed).toEqual([`rate<${spec.k6.failedRate}`]);
    expect(thresholds.stress?.["http_req_duration{endpoint:auth_me}"]?.[0]).toMatchObject({ abortOnFail: true });
  });
});
