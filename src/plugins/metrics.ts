import { Elysia, t } from "elysia";
import client from "prom-client";
import { elapsedSeconds, responseStatus, UNMATCHED_ROUTE } from "./request-context";

/** promtool rejects gauges ending in _total; prom-client's default set has three. */
const NON_CONFORMING_DEFAULTS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

export const HTTP_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.12, 0.25, 0.5, 1, 2.5, 5];

/** Every metric the service exports is declared here, so names live in one place. */
export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  for (const name of NON_CONFORMING_DEFAULTS) registry.removeSingleMetric(name);
  return {
    registry,
    httpRequests: new client.Counter({
      name: "http_requests_total",
      help: "HTTP requests by method, route template and status.",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
    }),
    httpDuration: new client.Histogram({
      name: "http_request_duration_seconds",
      help: "HTTP request latency by method and route template.",
      labelNames: ["method", "route"] as const,
      buckets: HTTP_DURATION_BUCKETS,
      registers: [registry],
    }),
    feedback: new client.Counter({
      name: "aiops_feedback_total",
      help: 'Feedback accepted, by verdict and subject type (false-positive ratio: verdict="false_positive" over all).',
      labelNames: ["verdict", "subject_type"] as const,
      registers: [registry],
    }),
    feedbackSpoolDepth: new client.Gauge({
      name: "feedback_spool_depth",
      help: "Feedback items waiting in SQLite for Redis to come back.",
      registers: [registry],
    }),
    rateLimitDecisions: new client.Counter({
      name: "rate_limit_decisions_total",
      help: "Rate-limit decisions by route class (auth, api) and decision (allowed, limited).",
      labelNames: ["class", "decision"] as const,
      registers: [registry],
    }),
    rateLimitFallback: new client.Gauge({
      name: "rate_limit_fallback_active",
      help: "1 while the in-process limiter stands in for Redis.",
      registers: [registry],
    }),
    redisUp: new client.Gauge({
      name: "redis_up",
      help: "1 while the configured Redis answers commands (absent without REDIS_URL).",
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Times every request by route template (never the raw path) and serves `/metrics`. Label sets
 * are bounded (templates × methods × statuses), so their children are cached: prom-client would
 * otherwise hash the labels object on every request.
 */
export const metricsPlugin = (metrics: Metrics) => {
  const counters = new Map<string, client.Counter.Internal>();
  const timers = new Map<string, client.Histogram.Internal<"method" | "route">>();
  return new Elysia({ name: "metrics" })
    .onAfterResponse({ as: "global" }, ({ request, route, set, response }) => {
      const template = route || UNMATCHED_ROUTE;
      const method = KNOWN_METHODS.has(request.method) ? request.method : "OTHER";
      const status = responseStatus(response, set);
      const routeKey = `${method} ${template}`;
      const countKey = `${routeKey} ${status}`;
      let counter = counters.get(countKey);
      if (!counter) {
        counter = metrics.httpRequests.labels({ method, route: template, status: String(status) });
        counters.set(countKey, counter);
      }
      let timer = timers.get(routeKey);
      if (!timer) {
        timer = metrics.httpDuration.labels({ method, route: template });
        timers.set(routeKey, timer);
      }
      counter.inc();
      timer.observe(elapsedSeconds(request));
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
