// Smoke test: one virtual user calls each endpoint the load mix uses, and the reads behind them,
// once, and checks its answer.
//   k6 run -e BASE_URL=http://localhost:8080 -e API_KEY=wdn_… loadtest/smoke.js
import { check } from "k6";
import http from "k6/http";
import { authGet, authRead, BASE_URL, createNotification, postFeedback, refreshToken, setupTenant } from "./lib.js";

/** @type {Record<string, Record<string, import("k6/options").Threshold[]>>} */
const THRESHOLDS = JSON.parse(open("./thresholds.json"));

/** @type {import("k6/options").Options} */
export const options = {
  vus: 1,
  iterations: 1,
  thresholds: THRESHOLDS.smoke,
};

/** @param {string} path @param {string} endpoint */
function get(path, endpoint) {
  return http.get(`${BASE_URL}${path}`, { tags: { endpoint } });
}

export const setup = setupTenant;

/** @param {import("./lib.js").SetupData} data */
export default function (data) {
  const health = get("/health", "health");
  check(health, {
    "health is 200": (r) => r.status === 200,
    "health says ok": (r) => r.json("status") === "ok",
  });

  const ready = get("/ready", "ready");
  check(ready, { "ready is 200": (r) => r.status === 200 });

  const metrics = get("/metrics", "metrics");
  check(metrics, {
    "metrics is 200": (r) => r.status === 200,
    "metrics counts requests": (r) => String(r.body).includes("http_requests_total"),
  });

  const docs = get("/swagger/json", "docs");
  check(docs, { "openapi document is served": (r) => r.status === 200 && r.json("openapi") !== undefined });

  const jwks = get("/.well-known/jwks.json", "jwks");
  check(jwks, { "jwks lists keys": (r) => r.status === 200 && Array.isArray(r.json("keys")) });

  // The first call exchanges the API key (token_client_credentials), the second refreshes.
  authRead();
  refreshToken();
  postFeedback();
  createNotification(data);

  // The reads behind them: the inbox, feedback by subject and in summary, webhook operations.
  const inbox = authGet("/v1/notifications?limit=5", "inbox_list");
  check(inbox, { "the inbox holds the notification": (r) => Number(r.json("notifications.#")) >= 1 });
  authGet("/v1/notifications/unread-count", "inbox_unread_count");
  authGet("/v1/feedback?subject_id=k6-alert-0", "feedback_list");
  authGet("/v1/feedback/summary", "feedback_summary");
  authGet("/v1/webhooks/endpoints", "webhook_endpoints_list");
  authGet("/v1/webhooks/deliveries?limit=5", "webhook_deliveries_list");
  authGet("/v1/webhooks/stats", "webhook_stats");
}
