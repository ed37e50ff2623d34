import { Elysia } from "elysia";
import { notFound } from "../../lib/problem";
import css from "./assets/dashboard.css" with { type: "file" };
import script from "./assets/dashboard.js" with { type: "file" };
import icon from "./assets/favicon.svg" with { type: "file" };

export const DASHBOARD_PATH = "/admin";

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Warden admin</title>
  <link rel="stylesheet" href="${DASHBOARD_PATH}/assets/dashboard.css">
  <link rel="icon" href="${DASHBOARD_PATH}/assets/favicon.svg" type="image/svg+xml">
</head>
<body>
  <header><h1>Warden admin</h1><span id="who" class="muted"></span></header>
  <form id="signin" method="post" action="#">
    <label for="token">Admin access token (or an admin API key, <code>wdn_…</code>)</label>
    <input id="token" name="token" type="password" autocomplete="off" required>
    <button type="submit" disabled>Sign in</button>
    <p id="signin-error" class="error" role="alert"></p>
  </form>
  <main id="dashboard" hidden>
    <p><button id="refresh" type="button">Refresh</button> <button id="signout" type="button">Sign out</button>
      <span id="updated" class="muted"></span> <span id="error" class="error" role="alert"></span></p>
    <h2>Webhook queue</h2>
    <section><div id="queue" class="numbers"></div><p id="success"></p></section>
    <h2>Recent failures</h2>
    <section>
      <table id="failures"><thead><tr><th>delivery</th><th>event</th><th>status</th><th>attempts</th><th>last error</th><th>next attempt</th><th></th></tr></thead><tbody></tbody></table>
      <p id="no-failures" class="muted">No failed or dead deliveries.</p>
    </section>
    <h2>Latest audit events</h2>
    <section><table id="audit"><thead><tr><th>time</th><th>action</th><th>actor</th><th>target</th><th>outcome</th></tr></thead><tbody></tbody></table></section>
  </main>
  <script src="${DASHBOARD_PATH}/assets/dashboard.js"></script>
</body>
</html>`;

const ASSETS: Record<string, { file: string; type: string }> = {
  "dashboard.js": { file: script, type: "text/javascript; charset=utf-8" },
  "dashboard.css": { file: css, type: "text/css; charset=utf-8" },
  "favicon.svg": { file: icon, type: "image/svg+xml" },
};

const hidden = { detail: { hide: true } };

/**
 * The admin dashboard: one static page and two local assets under the default CSP. It holds no
 * data of its own; it signs in with an admin token and reads the same API as any client.
 */
export const dashboard = () =>
  new Elysia({ name: "dashboard" })
    .get(
      DASHBOARD_PATH,
      ({ set }) => {
        set.headers["content-type"] = "text/html; charset=utf-8";
        set.headers["cache-control"] = "no-store";
        return PAGE;
      },
      hidden,
    )
    .get(
      `${DASHBOARD_PATH}/assets/:file`,
      ({ params, set }) => {
        const asset = Object.hasOwn(ASSETS, params.file) ? ASSETS[params.file] : undefined;
        if (!asset) throw notFound();
        set.headers["content-type"] = asset.type;
        set.headers["cache-control"] = "no-cache";
        return Bun.file(asset.file);
      },
      hidden,
    );
