// Shared by the k6 scripts: configuration, the tenant setup, one token session per VU and the
// requests of the mix, each tagged with the `endpoint` the thresholds in thresholds.json name.
import { check, fail } from "k6";
import exec from "k6/execution";
import http from "k6/http";

export const BASE_URL = (__ENV.BASE_URL || "http://localhost:8080").replace(/\/$/, "");
const API_KEY = __ENV.API_KEY || "";
const JSON_HEADERS = { "content-type": "application/json" };
/** Renew an access token this long before it expires. */
const RENEW_MARGIN_MS = 60_000;
const VERDICTS = ["useful", "not_useful", "false_positive", "true_positive"];

/**
 * @typedef {{ userId: string, tenant: string }} SetupData
 * @typedef {{ access: string, refresh: string, expiresAt: number }} Session
 */

/** @param {string} name */
export function envNumber(name, fallback = 0) {
  const value = Number(__ENV[name] || fallback);
  if (!Number.isFinite(value) || value <= 0) fail(`${name} must be a positive number`);
  return value;
}

/** @param {string} token */
function bearer(token) {
  return { authorization: `Bearer ${token}`, "content-type": "application/json" };
}

/**
 * POST /v1/auth/token with `fields`, checked, tagged `endpoint`.
 * @param {Record<string, string>} fields
 * @param {string} endpoint
 */
function exchange(fields, endpoint) {
  const res = http.post(`${BASE_URL}/v1/auth/token`, JSON.stringify(fields), {
    headers: JSON_HEADERS,
    tags: { endpoint },
  });
  check(res, {
    [`${endpoint} answers 200 with tokens`]: (r) => r.status === 200 && !!r.json("access_token"),
  });
  return res;
}

/**
 * The session a token answer carries, if it is one.
 * @param {import("k6/http").RefinedResponse<"text">} res
 * @returns {Session | undefined}
 */
function sessionFrom(res) {
  if (res.status !== 200) return undefined;
  return {
    access: String(res.json("access_token")),
    refresh: String(res.json("refresh_token")),
    expiresAt: Date.now() + Number(res.json("expires_in")) * 1000,
  };
}

/** @param {import("k6/http").RefinedResponse<"text">} res */
function answered(res) {
  return res.status === 0 ? `nothing (${res.error})` : `${res.status}: ${res.body}`;
}

/** @param {string} endpoint */
function clientCredentials(endpoint) {
  return exchange({ grant_type: "client_credentials", client_secret: API_KEY }, endpoint);
}

/**
 * Runs once before the VUs: checks the API key through the real token endpoint and learns who
 * it belongs to (notifications go to that user). Requests here are tagged `setup_*`, so they
 * cannot satisfy the thresholds' `count>0` guards.
 * @returns {SetupData}
 */
export function setupTenant() {
  if (!API_KEY) fail("API_KEY is required: an admin API key (`warden admin create --json` prints one)");
  const token = clientCredentials("setup_token");
  const session = sessionFrom(token);
  if (!session) fail(`POST ${BASE_URL}/v1/auth/token with API_KEY answered ${answered(token)}`);
  const me = http.get(`${BASE_URL}/v1/auth/me`, { headers: bearer(session.access), tags: { endpoint: "setup_me" } });
  if (me.status !== 200) fail(`GET ${BASE_URL}/v1/auth/me answered ${answered(me)}`);
  if (me.json("role") !== "admin" && me.json("role") !== "developer")
    fail("API_KEY must belong to an admin or developer: creating notifications needs one");
  return { userId: String(me.json("sub")), tenant: String(me.json("tenant")) };
}

/** This VU's session: one client_credentials exchange, then refreshes. @type {Session | undefined} */
let session;

/** The VU's access token, renewed through its refresh token before it expires. */
function accessToken() {
  if (!session) session = sessionFrom(clientCredentials("token_client_credentials"));
  else if (Date.now() > session.expiresAt - RENEW_MARGIN_MS) refreshToken();
  if (!session) fail("could not obtain an access token");
  return session.access;
}

export function refreshToken() {
  if (!session) {
    session = sessionFrom(clientCredentials("token_client_credentials"));
    return;
  }
  // A refresh token is single use: the next one comes with the answer.
  session = sessionFrom(exchange({ grant_type: "refresh_token", refresh_token: session.refresh }, "token_refresh"));
}

export function authRead() {
  const res = http.get(`${BASE_URL}/v1/auth/me`, { headers: bearer(accessToken()), tags: { endpoint: "auth_me" } });
  check(res, { "auth_me answers 200": (r) => r.status === 200 });
}

/** An authenticated GET answering 200, tagged `endpoint`. @param {string} path @param {string} endpoint */
export function authGet(path, endpoint) {
  const res = http.get(`${BASE_URL}${path}`, { headers: bearer(accessToken()), tags: { endpoint } });
  check(res, { [`${endpoint} answers 200`]: (r) => r.status === 200 });
  return res;
}

export function postFeedback() {
  const n = exec.scenario.iterationInTest;
  const body = {
    subject_type: "alert",
    subject_id: `k6-alert-${n % 500}`,
    verdict: VERDICTS[n % VERDICTS.length],
    rating: (n % 5) + 1,
    comment: "load test",
    labels: { source: "k6" },
  };
  const res = http.post(`${BASE_URL}/v1/feedback`, JSON.stringify(body), {
    headers: bearer(accessToken()),
    tags: { endpoint: "feedback_create" },
  });
  check(res, { "feedback_create answers 202": (r) => r.status === 202 });
}

/** @param {SetupData} data */
export function createNotification(data) {
  const body = {
    recipients: { user_ids: [data.userId] },
    type: "loadtest.ping",
    title: "k6",
    body: `iteration ${exec.scenario.iterationInTest}`,
    data: { vu: exec.vu.idInTest },
  };
  const res = http.post(`${BASE_URL}/v1/notifications`, JSON.stringify(body), {
    headers: bearer(accessToken()),
    tags: { endpoint: "notification_create" },
  });
  check(res, { "notification_create answers 2xx": (r) => r.status >= 200 && r.status < 300 });
}

/**
 * One request of the production-like mix, chosen by iteration number so every run has the same
 * shares: 70 % authenticated reads, 15 % feedback, 10 % notifications, 5 % token refreshes.
 * @param {SetupData} data
 */
export function mixedRequest(data) {
  const slot = exec.scenario.iterationInTest % 20;
  if (slot < 14) authRead();
  else if (slot < 17) postFeedback();
  else if (slot < 19) createNotification(data);
  else refreshToken();
}
