import { Elysia } from "elysia";

export const DEFAULT_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** On every response; the app's adapter prebuilds them (src/plugins/response-adapter.ts). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "strict-transport-security": "max-age=63072000; includeSubDomains",
  "content-security-policy": DEFAULT_CSP,
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  // API answers are per caller: no shared or browser cache keeps them. Routes that may be cached
  // (the JWKS, the Swagger and dashboard assets) say so themselves.
  "cache-control": "no-store",
};

const CORS_METHODS = "GET, POST, PUT, PATCH, DELETE";
const CORS_REQUEST_HEADERS = "authorization, content-type, x-request-id, x-client-id, idempotency-key";
const CORS_EXPOSED_HEADERS = "x-request-id, retry-after, ratelimit, ratelimit-policy, www-authenticate, location";

/**
 * CORS for an allow-listed origin, written into `headers`; undefined without an allow-list.
 * Answers true for a preflight, which the caller ends with a bare 204.
 */
export function corsHeaders(
  corsOrigins: readonly string[],
): ((request: Request, headers: Record<string, unknown>) => boolean) | undefined {
  if (corsOrigins.length === 0) return undefined;
  const allowed = new Set(corsOrigins);
  return (request, headers) => {
    const origin = request.headers.get("origin");
    if (origin === null) return false;
    headers.vary = "Origin";
    if (!allowed.has(origin)) return false;
    headers["access-control-allow-origin"] = origin;
    headers["access-control-expose-headers"] = CORS_EXPOSED_HEADERS;
    if (request.method !== "OPTIONS" || !request.headers.has("access-control-request-method")) return false;
    headers["access-control-allow-methods"] = CORS_METHODS;
    headers["access-control-allow-headers"] = CORS_REQUEST_HEADERS;
    headers["access-control-max-age"] = "600";
    return true;
  };
}

/**
 * Security headers on every response, errors and 404s included (set before routing, so a handler
 * may only relax them deliberately, as the Swagger page does). CORS answers only origins on the
 * allow-list, and says nothing at all to the rest — @elysiajs/cors sends its allow headers to
 * every caller, which is why this is a few lines of our own.
 */
export const securityHeaders = (corsOrigins: readonly string[]) => {
  // Default headers are copied into each request's context when it is created, before routing:
  // cheaper than a hook, and present on errors and 404s too.
  const plugin = new Elysia({ name: "security-headers", seed: corsOrigins }).headers(SECURITY_HEADERS);
  const cors = corsHeaders(corsOrigins);
  if (!cors) return plugin;
  return plugin.onRequest(({ request, set }) => {
    if (!cors(request, set.headers)) return;
    set.status = 204;
    return new Response(null, { status: 204, headers: set.headers as Record<string, string> });
  });
};
