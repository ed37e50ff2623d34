import { Elysia, t } from "elysia";
import client from "prom-client";
import { CounterTallies, type CounterTally, type HistogramTally, TalliedHistogram } from "../lib/tallies";
import { elapsedSeconds, responseStatus, UNMATCHED_ROUTE } from "./request-context";

/** promtool rejects gauges ending in _total; prom-client's default set has three. */
const NON_CONFORMING_DEFAULTS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

/**
 * Bun answers `v8.getHeapSpaceStatistics()` by walking the heap: ~45 ms a scrape with a few
 * hundred MB live, the event loop blocked meanwhile (every scrape stalled every request). The
 * heap totals (`nodejs_heap_size_*_bytes`) and resident memory stay.
 */
const BLOCKING_DEFAULTS = [
  "nodejs_heap_space_size_total_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_heap_space_size_available_bytes",
];

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

const DELIVERY_LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600];
const ATTEMPT_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const QUEUE_STATUSES = ["pending", "leased", "failed", "dead"] as const;

export const HTTP_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.12, 0.25, 0.5, 1, 2.5, 5];

/** What the ops gauges read at scrape time. */
export interface OpsProbes {
  /** What /ready would answer: false when SQLite refuses writes. */
  ready(): Promise<boolean>;
  /** DATA_DIR's filesystem and the database files in it. */
  storage(): { freeBytes: number; totalBytes: number; databaseBytes: number };
}

const ATTEMPT_OUTCOMES = ["delivered", "retry", "dead", "disabled"] as const;

/**
 * Each outcome's series exists from the start, at 0: a series born with its first event is
 * invisible to `rate()` and `increase()` for that event (the first delivery failure after a
 * restart would not count).
 */
function zeroed<T extends client.Counter<"outcome">>(counter: T, outcomes: readonly string[]): T {
  for (const outcome of outcomes) counter.labels({ outcome }).inc(0);
  return counter;
}

/**
 * Every metric the service exports is declared here, so names live in one place. Without
 * `probes` (unit tests of other parts) the scrape-time ops gauges are left out.
 */
const REVOCATION_KINDS = ["token", "session", "user", "tenant"] as const;
type RevocationKind = (typeof REVOCATION_KINDS)[number];

export function createMetrics(probes?: OpsProbes) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  for (const name of [...NON_CONFORMING_DEFAULTS, ...BLOCKING_DEFAULTS]) registry.removeSingleMetric(name);
  // Filled in by the webhook module once the database is open; read at scrape time.
  const sources = {
    webhookQueueDepth: (): Partial<Record<string, number>> => ({}),
    webhookOverdueSeconds: (): number => 0,
    revocationCache: (): Partial<Record<RevocationKind, number>> => ({}),
  };
  if (probes) registerOpsProbes(registry, probes);
  // Counted per request: tallied, so the hot path never hashes a labels object (src/lib/tallies.ts).
  const httpRequestTallies = new CounterTallies<"method" | "route" | "status">();
  const rateLimitTallies = new CounterTallies<"class" | "decision">();
  const feedbackTallies = new CounterTallies<"verdict" | "subject_type">();
  const notificationTallies = new CounterTallies<never>();
  return {
    registry,
    sources,
    notificationsCreated: notificationTallies.of({}),
    notificationsCreatedCounter: new client.Counter({
      name: "notifications_created_total",
      help: "Notifications accepted.",
      registers: [registry],
      collect() {
        notificationTallies.flushInto(this);
      },
    }),
    webhookQueueDepth: new client.Gauge({
      name: "webhook_queue_depth",
      help: "Webhook deliveries not yet delivered, by status (failed = waiting for a retry).",
      labelNames: ["status"] as const,
      registers: [registry],
      collect() {
        const depth = sources.webhookQueueDepth();
        for (const status of QUEUE_STATUSES) this.labels({ status }).set(depth[status] ?? 0);
      },
    }),
    webhookOverdue: new client.Gauge({
      name: "webhook_overdue_seconds",
      help: "How long the longest-waiting due delivery has been due (0 when none is): grows when no dispatcher delivers.",
      registers: [registry],
      collect() {
        this.set(sources.webhookOverdueSeconds());
      },
    }),
    webhookAttempts: zeroed(
      new client.Counter({
        name: "webhook_delivery_attempts_total",
        help: "Webhook delivery attempts by outcome (not one whose lease ran out first): delivered, retry, dead, disabled (receiver answered 410).",
        labelNames: ["outcome"] as const,
        registers: [registry],
      }),
      ATTEMPT_OUTCOMES,
    ),
    rowsPruned: new client.Counter({
      name: "notification_rows_pruned_total",
      help: "Rows deleted by notification retention (NOTIFICATION_RETENTION_DAYS), by table.",
      labelNames: ["table"] as const,
      registers: [registry],
    }),
    webhookDead: new client.Counter({
      name: "webhook_deliveries_dead_total",
      help: "Webhook deliveries that used up their retries (dead-lettered).",
      registers: [registry],
    }),
    webhookLatency: new client.Histogram({
      name: "webhook_delivery_latency_seconds",
      help: "From a notification's acceptance to its webhook's successful delivery.",
      buckets: DELIVERY_LATENCY_BUCKETS,
      registers: [registry],
    }),
    webhookAttemptDuration: new client.Histogram({
      name: "webhook_attempt_duration_seconds",
      help: "Duration of one webhook HTTP attempt.",
      buckets: ATTEMPT_DURATION_BUCKETS,
      registers: [registry],
    }),
    httpRequestTallies,
    httpRequests: new client.Counter({
      name: "http_requests_total",
      help: "HTTP requests by method, route template and status.",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
      collect() {
        httpRequestTallies.flushInto(this);
      },
    }),
    httpDuration: new TalliedHistogram({
      name: "http_request_duration_seconds",
      help: "HTTP request latency by method and route template.",
      labelNames: ["method", "route"] as const,
      buckets: HTTP_DURATION_BUCKETS,
      registers: [registry],
    }),
    revocationCache: new client.Gauge({
      name: "revocation_cache_entries",
      help: "Live revocations held in memory and checked on every authenticated request, by kind (token, session, user, tenant).",
      labelNames: ["kind"] as const,
      registers: [registry],
      collect() {
        const sizes = sources.revocationCache();
        for (const kind of REVOCATION_KINDS) this.labels({ kind }).set(sizes[kind] ?? 0);
      },
    }),
    auditChainVerified: new client.Gauge({
      name: "audit_chain_verified",
      help: "1 if the last verification of the audit chain found every link intact, 0 if it found a broken one.",
      registers: [registry],
    }),
    auditChainLastVerify: new client.Gauge({
      name: "audit_chain_last_verify_timestamp_seconds",
      help: "When the audit chain was last verified (0: not yet).",
      registers: [registry],
    }),
    feedbackTallies,
    feedback: new client.Counter({
      name: "aiops_feedback_total",
      help: 'Feedback accepted, by verdict and subject type (false-positive ratio: verdict="false_positive" over all).',
      labelNames: ["verdict", "subject_type"] as const,
      registers: [registry],
      collect() {
        feedbackTallies.flushInto(this);
      },
    }),
    feedbackSpoolDepth: new client.Gauge({
      name: "feedback_spool_depth",
      help: "Feedback items waiting in SQLite for Redis to come back.",
      registers: [registry],
    }),
    rateLimitTallies,
    rateLimitDecisions: new client.Counter({
      name: "rate_limit_decisions_total",
      help: "Rate-limit decisions by class (auth, api, account: password-grant attempts per account) and decision (allowed, limited).",
      labelNames: ["class", "decision"] as const,
      registers: [registry],
      collect() {
        rateLimitTallies.flushInto(this);
      },
    }),
    rateLimitFallback: new client.Gauge({
      name: "rate_limit_fallback_active",
      help: "1 while the in-process limiter stands in for Redis.",
      registers: [registry],
    }),
    redisUp: new client.Gauge({
      name: "redis_up",
      help: "1 while the configured Redis is connected and answered the last readiness PING (absent without REDIS_URL).",
      registers: [registry],
      // The readiness check (shared with warden_ready's, one a second) sets it: this scrape's, not the last.
      async collect() {
        await probes?.ready();
      },
    }),
  };
}

function registerOpsProbes(registry: client.Registry, probes: OpsProbes): void {
  const gauge = (name: string, help: string, collect: (g: client.Gauge) => void | Promise<void>) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        return collect(this);
      },
    });
  gauge("warden_ready", "1 while /ready would answer ready or degraded, 0 when it would answer 503.", async (g) => {
    g.set((await probes.ready()) ? 1 : 0);
  });
  gauge("sqlite_disk_free_bytes", "Bytes available to Warden on DATA_DIR's filesystem.", (g) => {
    g.set(probes.storage().freeBytes);
  });
  gauge("sqlite_disk_total_bytes", "Size of DATA_DIR's filesystem.", (g) => {
    g.set(probes.storage().totalBytes);
  });
  gauge("sqlite_database_bytes", "Size of the SQLite database and its write-ahead log.", (g) => {
    g.set(probes.storage().databaseBytes);
  });
}

export type Metrics = ReturnType<typeof createMetrics>;

/** A route template × method's tallies: its latency series and one counter per status seen. */
interface RouteTallies {
  readonly latency: HistogramTally;
  readonly byStatus: Map<number, CounterTally>;
}

/** The 5xx the service answers: 500 from the errors hook, on any route; 503 from /ready and the feedback reads. */
const SERVER_ERROR_STATUSES = ["500", "503"] as const;

/**
 * Every route's 5xx series exist from the start, at 0: an SLO counts 5xx with `rate()`, and a
 * series born with its first 5xx is invisible to it for that one (as the first after a restart).
 * Both statuses on every route: two series each, bounded by the route table.
 */
export function zeroServerErrors(metrics: Metrics, routes: readonly { method: string; path: string }[]): void {
  for (const { method, path } of routes) {
    if (!KNOWN_METHODS.has(method)) continue;
    for (const status of SERVER_ERROR_STATUSES) metrics.httpRequests.labels({ method, route: path, status }).inc(0);
  }
}

/** Counts and times one finished request; an empty route is the unmatched one. */
export type RequestRecorder = (method: string, route: string, status: number, seconds: number) => void;

/**
 * The per-request HTTP metrics, shared by the Elysia hook and the lean path
 * (src/plugins/lean-routes.ts). Label sets are bounded (templates × methods × statuses); each is
 * looked up through nested maps keyed by the strings the request already has, so no key is built
 * per request.
 */
export function requestRecorder(metrics: Metrics): RequestRecorder {
  const routes = new Map<string, Map<string, RouteTallies>>();
  const talliesOf = (method: string, route: string): RouteTallies => {
    let byMethod = routes.get(route);
    if (!byMethod) {
      byMethod = new Map();
      routes.set(route, byMethod);
    }
    let tallies = byMethod.get(method);
    if (!tallies) {
      tallies = { latency: metrics.httpDuration.tally({ method, route }), byStatus: new Map() };
      byMethod.set(method, tallies);
    }
    return tallies;
  };
  return (requestMethod, route, status, seconds) => {
    const method = KNOWN_METHODS.has(requestMethod) ? requestMethod : "OTHER";
    const tallies = talliesOf(method, route || UNMATCHED_ROUTE);
    let counter = tallies.byStatus.get(status);
    if (!counter) {
      counter = metrics.httpRequestTallies.of({ method, route: route || UNMATCHED_ROUTE, status: String(status) });
      tallies.byStatus.set(status, counter);
    }
    counter.inc();
    tallies.latency.observe(seconds);
  };
}

/** Times every request by route template (never the raw path) and serves `/metrics`. */
export const metricsPlugin = (metrics: Metrics) => {
  const record = requestRecorder(metrics);
  return new Elysia({ name: "metrics" })
    .onAfterResponse({ as: "global" }, ({ request, route, set, response }) => {
      record(request.method, route, responseStatus(response, set), elapsedSeconds(request));
    })
    .get(
      "/metrics",
      async ({ set }) => {
        set.headers["content-type"] = metrics.registry.contentType;
        return metrics.registry.metrics();
      },
      {
        response: t.String({ description: "Prometheus text exposition format 0.0.4" }),
        detail: {
          tags: ["operations"],
          summary: "Prometheus metrics",
          description: "HTTP golden signals by route template, process and runtime metrics.",
        },
      },
    );
};
