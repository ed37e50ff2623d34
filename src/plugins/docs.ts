import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import swaggerIcon from "swagger-ui-dist/favicon-32x32.png" with { type: "file" };
import swaggerCss from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import swaggerBundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import { notFound } from "../lib/problem";
import { completeDocument, PROBLEM_SCHEMA } from "./openapi-document";
import type { RouteEntry } from "./route-index";
import { DEFAULT_CSP } from "./security-headers";

export const DOCS_PATH = "/swagger";
export const SPEC_PATH = "/swagger/json";

// Swagger UI styles elements inline and draws icons from data: URIs; nothing else is relaxed.
const DOCS_CSP = `${DEFAULT_CSP}; style-src 'self' 'unsafe-inline'; img-src 'self' data:`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Warden API</title>
  <link rel="icon" type="image/png" href="${DOCS_PATH}/assets/favicon-32x32.png">
  <link rel="stylesheet" href="${DOCS_PATH}/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${DOCS_PATH}/assets/swagger-ui-bundle.js"></script>
  <script src="${DOCS_PATH}/assets/init.js"></script>
</body>
</html>`;

// An external file rather than an inline script, so the page runs under script-src 'self'.
// persistAuthorization off: it would keep a pasted admin token in localStorage, readable by any
// script on this origin long after the tab closes (the /admin dashboard keeps its token per tab).
const INIT = `window.ui = SwaggerUIBundle({ url: ${JSON.stringify(SPEC_PATH)}, dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: false });`;

const ASSETS: Record<string, { body: () => BodyInit; type: string }> = {
  "swagger-ui-bundle.js": { body: () => Bun.file(swaggerBundle), type: "text/javascript; charset=utf-8" },
  "swagger-ui.css": { body: () => Bun.file(swaggerCss), type: "text/css; charset=utf-8" },
  "init.js": { body: () => INIT, type: "text/javascript; charset=utf-8" },
  // Named by the page: without an icon of its own, the browser asks for /favicon.ico, a 404.
  "favicon-32x32.png": { body: () => Bun.file(swaggerIcon), type: "image/png" },
};

const hidden = { detail: { hide: true } };

export const docs = (version: string, routes: () => readonly RouteEntry[]) =>
  new Elysia({ name: "docs" })
    // Registered before the generator's routes, so it sees the document they answer.
    .onAfterHandle({ as: "scoped" }, ({ path, response }) => {
      if (path === SPEC_PATH && response !== null && typeof response === "object") {
        completeDocument(response, routes());
      }
    })
    .use(
      openapi({
        path: DOCS_PATH,
        specPath: SPEC_PATH,
        provider: null,
        // Otherwise any path with a dot (/.well-known/jwks.json) is taken for a static file and left out.
        exclude: { staticFile: false },
        documentation: {
          // Relative: the document is served by the server it describes, at whatever address.
          servers: [{ url: "/", description: "this server" }],
          info: {
            title: "Warden API",
            version,
            // JSON Schema counts code points, and a client that checks lengths itself would
            // pass a string of emoji the service then refuses.
            description:
              "Tokens and revocation, audit trail, notifications and signed webhooks, feedback and rate limits. Errors are RFC 9457 problem+json.\n\nString lengths (`minLength`, `maxLength`) count UTF-16 code units, as JavaScript's `String.length` does, not the code points JSON Schema counts: a character outside the Basic Multilingual Plane (most emoji) counts as two, so a field of `maxLength: 200` takes at most 100 emoji.",
          },
          components: {
            securitySchemes: {
              bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
              // The token endpoint's client_secret_basic: an API key as HTTP Basic credentials.
              basic: { type: "http", scheme: "basic" },
            },
            // A TypeBox schema is plain JSON Schema; the document's typing is the narrower OpenAPI one.
            schemas: { Problem: PROBLEM_SCHEMA as unknown as Record<string, never> },
          },
        },
      }),
    )
    .get(
      DOCS_PATH,
      ({ set }) => {
        set.headers["content-security-policy"] = DOCS_CSP;
        set.headers["content-type"] = "text/html; charset=utf-8";
        return PAGE;
      },
      hidden,
    )
    .get(
      `${DOCS_PATH}/assets/:file`,
      ({ params, set }) => {
        const asset = Object.hasOwn(ASSETS, params.file) ? ASSETS[params.file] : undefined;
        if (!asset) throw notFound();
        set.headers["content-type"] = asset.type;
        set.headers["cache-control"] = "public, max-age=3600";
        return asset.body();
      },
      hidden,
    );
