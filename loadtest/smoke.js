// Smoke test: one virtual user calls every public endpoint once and checks its answer.
//   k6 run -e BASE_URL=http://localhost:8080 loadtest/smoke.js
import { check } from "k6";
import http from "k6/http";

/** @type {import("k6/options").Options} */
export const options = {
  vus: 1,
  iterations: 1,
  thresholds: { checks: ["rate==1"], http_req_failed: ["rate==0"] },
};

const BASE_URL = (__ENV.BASE_URL || "http://localhost:8080").replace(/\/$/, "");

/** @param {string} path @param {string} endpoint */
function get(path, endpoint) {
  return http.get(`${BASE_URL}${path}`, { tags: { endpoint } });
}

export default function () {
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
}
