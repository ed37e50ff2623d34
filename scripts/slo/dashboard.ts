/** alerts/dashboard.json: a Grafana dashboard of golden signals, SLO burn, webhooks, feedback and ops gauges. */
import { errorRatioRecord } from "./rules";
import { budgetOf, type SloSpec } from "./spec";

interface Target {
  readonly expr: string;
  readonly legend: string;
}

interface PanelSpec {
  readonly title: string;
  readonly description?: string;
  readonly unit: string;
  readonly targets: readonly Target[];
  readonly type?: "timeseries" | "stat";
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's dashboard-variable syntax, not a JS template.
const DATASOURCE = { type: "prometheus", uid: "${datasource}" };
const WIDTH = 8;
const HEIGHT = 8;

function rows(spec: SloSpec): { title: string; panels: PanelSpec[] }[] {
  const job = `job="${spec.job}"`;
  const rate = (selector: string, by = "") => `sum${by ? ` by (${by})` : ""} (rate(${selector}[5m]))`;
  return [
    {
      title: "Golden signals by route",
      panels: [
        {
          title: "Traffic",
          unit: "reqps",
          targets: [{ expr: rate(`http_requests_total{${job}}`, "route"), legend: "{{route}}" }],
        },
        {
          title: "Errors (5xx share)",
          unit: "percentunit",
          targets: [
            {
              expr: `${rate(`http_requests_total{${job},status=~"5.."}`, "route")} / ${rate(`http_requests_total{${job}}`, "route")}`,
              legend: "{{route}}",
            },
          ],
        },
        {
          title: "Latency p99",
          unit: "s",
          targets: [
            {
              expr: `histogram_quantile(0.99, ${rate(`http_request_duration_seconds_bucket{${job}}`, "route, le")})`,
              legend: "{{route}}",
            },
          ],
        },
        {
          title: "Latency p50",
          unit: "s",
          targets: [
            {
              expr: `histogram_quantile(0.5, ${rate(`http_request_duration_seconds_bucket{${job}}`, "route, le")})`,
              legend: "{{route}}",
            },
          ],
        },
        {
          title: "Saturation: event-loop lag p99 and CPU",
          unit: "s",
          targets: [
            { expr: `max by (instance) (nodejs_eventloop_lag_p99_seconds{${job}})`, legend: "lag p99 {{instance}}" },
            { expr: `sum by (instance) (rate(process_cpu_seconds_total{${job}}[5m]))`, legend: "CPU s/s {{instance}}" },
          ],
        },
        {
          title: "Rate-limit decisions",
          unit: "reqps",
          targets: [
            { expr: rate(`rate_limit_decisions_total{${job}}`, "class, decision"), legend: "{{class}} {{decision}}" },
          ],
        },
      ],
    },
    {
      title: "SLOs: error-budget burn rate (1 = spending exactly the budget)",
      panels: spec.slos.map((slo) => ({
        title: `${slo.name} (objective ${slo.objective * 100} %)`,
        description: slo.description,
        unit: "none",
        targets: (["1h", "6h", "1d", "3d"] as const).map((w) => ({
          expr: `${errorRatioRecord(w)}{slo="${slo.name}"} / ${budgetOf(slo)}`,
          legend: w,
        })),
      })),
    },
    {
      title: "Notifications and webhooks",
      panels: [
        {
          title: "Webhook queue depth",
          unit: "short",
          // Every instance on the database reports the whole queue: the max, not the sum.
          targets: [{ expr: `max by (status) (webhook_queue_depth{${job}})`, legend: "{{status}}" }],
        },
        {
          title: "Delivery attempts by outcome",
          unit: "ops",
          targets: [{ expr: rate(`webhook_delivery_attempts_total{${job}}`, "outcome"), legend: "{{outcome}}" }],
        },
        {
          title: "Delivery delay (accepted → delivered)",
          unit: "s",
          targets: [0.5, 0.99].map((q) => ({
            expr: `histogram_quantile(${q}, ${rate(`webhook_delivery_latency_seconds_bucket{${job}}`, "le")})`,
            legend: `p${q * 100}`,
          })),
        },
        {
          title: "Longest wait of a due delivery",
          description: "WebhookDispatchStalled pages past 10 minutes",
          unit: "s",
          targets: [{ expr: `max(webhook_overdue_seconds{${job}})`, legend: "overdue" }],
        },
        {
          title: "Notifications created",
          unit: "ops",
          targets: [{ expr: rate(`notifications_created_total{${job}}`), legend: "created" }],
        },
      ],
    },
    {
      title: "Feedback",
      panels: [
        {
          title: "False-positive rate by subject type (1h)",
          description: "false_positive verdicts / all verdicts",
          unit: "percentunit",
          targets: [
            {
              expr: `sum by (subject_type) (rate(aiops_feedback_total{${job},verdict="false_positive"}[1h])) / sum by (subject_type) (rate(aiops_feedback_total{${job}}[1h]))`,
              legend: "{{subject_type}}",
            },
          ],
        },
        {
          title: "Feedback by verdict",
          unit: "ops",
          targets: [{ expr: rate(`aiops_feedback_total{${job}}`, "verdict"), legend: "{{verdict}}" }],
        },
        {
          title: "Feedback spooled while Redis is away",
          unit: "short",
          // The spool is shared by the instances on the database, as the queue is.
          targets: [{ expr: `max(feedback_spool_depth{${job}})`, legend: "spooled" }],
        },
      ],
    },
    {
      title: "Operations",
      panels: [
        {
          title: "Ready, Redis, fallback",
          unit: "short",
          targets: [
            { expr: `min by (instance) (warden_ready{${job}})`, legend: "ready {{instance}}" },
            { expr: `min by (instance) (redis_up{${job}})`, legend: "redis up {{instance}}" },
            { expr: `max by (instance) (rate_limit_fallback_active{${job}})`, legend: "fallback {{instance}}" },
          ],
        },
        {
          title: "Instances scraped, restarts in 30 minutes",
          description: "WardenInstanceDown, WardenAbsent (no series at all) and WardenRestarting",
          unit: "short",
          targets: [
            { expr: `sum(up{${job}})`, legend: "instances up" },
            {
              expr: `changes(process_start_time_seconds{${job}}[30m])`,
              legend: "restarts {{instance}}",
            },
          ],
        },
        {
          title: "Audit chain verified",
          unit: "short",
          targets: [{ expr: `min by (instance) (audit_chain_verified{${job}})`, legend: "verified {{instance}}" }],
        },
        {
          title: "Since the last audit chain verification",
          unit: "s",
          targets: [
            {
              expr: `time() - max by (instance) (audit_chain_last_verify_timestamp_seconds{${job}})`,
              legend: "{{instance}}",
            },
          ],
        },
        {
          title: "SQLite disk",
          unit: "bytes",
          targets: [
            { expr: `min by (instance) (sqlite_disk_free_bytes{${job}})`, legend: "free {{instance}}" },
            { expr: `max by (instance) (sqlite_database_bytes{${job}})`, legend: "database {{instance}}" },
          ],
        },
      ],
    },
  ];
}

/** Every PromQL expression on the dashboard, for the test that has promtool parse them. */
export function dashboardExpressions(dashboard: ReturnType<typeof dashboardFile>): string[] {
  return dashboard.panels.flatMap((p) => ("targets" in p ? p.targets.map((t) => t.expr) : []));
}

export function dashboardFile(spec: SloSpec) {
  const panels: (
    | { id: number; type: "row"; title: string; collapsed: false; gridPos: object; panels: [] }
    | {
        id: number;
        type: string;
        title: string;
        description?: string;
        datasource: typeof DATASOURCE;
        gridPos: object;
        fieldConfig: object;
        options: object;
        targets: { refId: string; expr: string; legendFormat: string; datasource: typeof DATASOURCE }[];
      }
  )[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows(spec)) {
    panels.push({
      id: id++,
      type: "row",
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    row.panels.forEach((panel, i) => {
      const x = (i % 3) * WIDTH;
      if (i > 0 && i % 3 === 0) y += HEIGHT;
      panels.push({
        id: id++,
        type: panel.type ?? "timeseries",
        title: panel.title,
        ...(panel.description ? { description: panel.description } : {}),
        datasource: DATASOURCE,
        gridPos: { h: HEIGHT, w: WIDTH, x, y },
        fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
        options: { legend: { displayMode: "list", placement: "bottom" }, tooltip: { mode: "multi" } },
        targets: panel.targets.map((t, j) => ({
          refId: String.fromCharCode(65 + j),
          expr: t.expr,
          legendFormat: t.legend,
          datasource: DATASOURCE,
        })),
      });
    });
    y += HEIGHT;
  }
  return {
    title: "Warden",
    uid: "warden-overview",
    description: "Generated by `bun run slo` from alerts/slos.yaml; edit that file, not this one.",
    tags: ["warden", "slo"],
    timezone: "utc",
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: "30s",
    time: { from: "now-6h", to: "now" },
    templating: {
      list: [
        {
          name: "datasource",
          label: "Prometheus",
          type: "datasource",
          query: "prometheus",
          current: {},
          hide: 0,
        },
      ],
    },
    annotations: { list: [] },
    panels,
  };
}
