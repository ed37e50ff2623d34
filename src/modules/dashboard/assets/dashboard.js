// Warden admin dashboard: plain DOM, no framework, no inline code (the page runs under the default CSP).
const TOKEN_KEY = "warden.dashboard.token";
/** Set when the dashboard opened the session itself (an API key exchanged): signing out ends it. */
const OWNED_KEY = "warden.dashboard.owned";
const REFRESH_MS = 5000;
const $ = (selector) => document.querySelector(selector);
let timer;

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  row.append(td);
  return td;
}

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = res.status === 204 ? null : await res.json();
  if (res.status === 401) {
    signOut("Your session has ended: sign in again.");
    throw new Error("unauthorized");
  }
  if (!res.ok) throw new Error(data?.detail ?? `${res.status} ${res.statusText}`);
  return data;
}

/** An API key (wdn_…) is exchanged for an access token; anything else is taken as an access token. */
async function signIn(secret) {
  let token = secret;
  if (secret.startsWith("wdn_")) {
    const res = await fetch("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "client_credentials", client_secret: secret }),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(data.detail ?? "the API key was refused");
    token = data.access_token;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  if (token !== secret) sessionStorage.setItem(OWNED_KEY, "1");
  const me = await api("GET", "/v1/auth/me");
  if (me.role !== "admin") {
    endOwnedSession();
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(OWNED_KEY);
    throw new Error(`This dashboard is for admins; this token's role is ${me.role}.`);
  }
  $("#who").textContent = `${me.sub} · tenant ${me.tenant}`;
}

/**
 * Logs out the session the dashboard opened by exchanging an API key. A pasted access token's
 * session may serve another client too, so it is left alone. Best effort: never waited for.
 */
function endOwnedSession() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token || !sessionStorage.getItem(OWNED_KEY)) return;
  fetch("/v1/auth/logout", { method: "POST", headers: { authorization: `Bearer ${token}` } }).catch(() => {});
}

function signOut(message) {
  clearInterval(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(OWNED_KEY);
  $("#dashboard").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message ?? "";
}

function renderStats(stats) {
  const numbers = $("#queue");
  numbers.replaceChildren();
  for (const status of ["pending", "leased", "failed", "dead", "delivered"]) {
    const box = document.createElement("div");
    box.className = "number";
    box.dataset.status = status;
    const value = document.createElement("strong");
    value.textContent = String(stats.queue[status] ?? 0);
    box.append(value, status);
    numbers.append(box);
  }
  $("#success").textContent =
    stats.success_rate_24h === null
      ? "No delivery attempts in the last 24 hours."
      : `${(stats.success_rate_24h * 100).toFixed(1)} % of ${stats.attempts_24h} attempts succeeded in the last 24 hours.`;
}

function renderFailures(deliveries) {
  const body = $("#failures tbody");
  body.replaceChildren();
  $("#no-failures").hidden = deliveries.length > 0;
  for (const delivery of deliveries) {
    const row = document.createElement("tr");
    row.dataset.id = delivery.id;
    cell(row, delivery.id);
    cell(row, delivery.event_type);
    cell(row, delivery.status).className = "status";
    cell(row, String(delivery.attempts));
    cell(row, delivery.last_error);
    cell(row, delivery.next_attempt_at ?? "—");
    // Nothing can be sent for an endpoint that no longer exists.
    if (delivery.last_error === "endpoint deleted") cell(row, "endpoint deleted").className = "muted";
    else {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Retry";
      button.addEventListener("click", () => retry(delivery.id, button));
      cell(row, "").append(button);
    }
    body.append(row);
  }
}

function renderAudit(events) {
  const body = $("#audit tbody");
  body.replaceChildren();
  for (const event of events) {
    const row = document.createElement("tr");
    cell(row, event.ts);
    cell(row, event.action);
    cell(row, `${event.actor.type}${event.actor.id ? ` ${event.actor.id}` : ""}`);
    cell(row, event.target ? `${event.target.type} ${event.target.id}` : "");
    cell(row, event.outcome);
    body.append(row);
  }
}

async function refreshDeliveries() {
  const [stats, failed, dead] = await Promise.all([
    api("GET", "/v1/webhooks/stats"),
    api("GET", "/v1/webhooks/deliveries?status=failed&limit=20"),
    api("GET", "/v1/webhooks/deliveries?status=dead&limit=20"),
  ]);
  renderStats(stats);
  renderFailures([...failed.deliveries, ...dead.deliveries]);
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// Reading the audit trail is itself audited, so it is read on sign-in and on demand, not polled.
async function refreshAll() {
  try {
    await refreshDeliveries();
    renderAudit((await api("GET", "/v1/audit?limit=10")).events);
    $("#error").textContent = "";
  } catch (error) {
    $("#error").textContent = error.message;
  }
}

async function retry(id, button) {
  button.disabled = true;
  try {
    await api("POST", `/v1/webhooks/deliveries/${encodeURIComponent(id)}/retry`);
    $("#error").textContent = "";
    await refreshAll();
  } catch (error) {
    $("#error").textContent = error.message;
    button.disabled = false;
  }
}

function show() {
  $("#signin").hidden = true;
  $("#dashboard").hidden = false;
  void refreshAll();
  clearInterval(timer);
  timer = setInterval(
    () => refreshDeliveries().catch((error) => ($("#error").textContent = error.message)),
    REFRESH_MS,
  );
}

$("#signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const secret = $("#token").value.trim();
  try {
    await signIn(secret);
    $("#token").value = "";
    show();
  } catch (error) {
    $("#signin-error").textContent = error.message;
  }
});
// Enabled only now: submitted without this script, the form would carry the token off the page.
$("#signin button").disabled = false;
$("#refresh").addEventListener("click", () => void refreshAll());
$("#signout").addEventListener("click", () => {
  endOwnedSession();
  signOut();
});

if (sessionStorage.getItem(TOKEN_KEY)) {
  api("GET", "/v1/auth/me").then(
    (me) => {
      $("#who").textContent = `${me.sub} · tenant ${me.tenant}`;
      show();
    },
    () => undefined,
  );
}
