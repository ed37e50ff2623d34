import type { Role } from "../../db/schema";
import type { Logger } from "../lib/logger";
import { createAccessLog } from "../lib/logger";
import type { AuditHook } from "../modules/audit/hook";
import type { AccessTokens } from "../modules/auth/access-tokens";
import { authorizer, type Principal } from "./auth";
import { problemOf, writeProblem } from "./errors";
import { type Metrics, requestRecorder } from "./metrics";
import { constantRateLimitHeaders, rateLimitDecider, routeClassOf } from "./rate-limit";
import type { RateLimiter, RouteClass } from "./rate-limiter";
import { beginRequest, elapsedSeconds, REQUEST_ID_HEADER, UNMATCHED_ROUTE } from "./request-context";
import { checkHeaderSize } from "./request-guards";
import { headersWithDefaults } from "./response-adapter";
import { corsHeaders, SECURITY_HEADERS } from "./security-headers";

/**
 * The lean path: the hottest authenticated GETs served in front of Elysia, from the same `fetch`,
 * by the same pieces the Elysia pipeline runs (request id, CORS, header-size guard, rate limit,
 * auth, handler, problem+json, access log, metrics), without Elysia's per-route machinery
 * (context object, hook chain, response mapping, the after-response `setImmediate`).
 *
 * A route opts in where it is declared: `const me = lean(ANY_ROLE, (principal) => …)`, then
 * `.get(path, me.handler, { auth: me.roles, response, detail })`. The route stays in Elysia (the
 * OpenAPI document, the access matrix, 405s, and every request the lean path passes on); the
 * lean path finds it in the app's route table by its handler, so path, roles and handler are
 * written once. Only a static path with no query, params, headers or body schema may opt in.
 *
 * The lean path answers a GET whose URL path equals a lean route's exactly. Everything else goes
 * to Elysia unchanged: other methods (HEAD, OPTIONS and CORS preflights), a query string, a
 * trailing slash, percent-encoding. It answers 200, and the problems the pipeline raises before
 * the handler (431, 429, 401, 403) or a handler's own HttpProblem or crash (500), exactly as the
 * errors hook would. The handler's value is not checked against the route's response schema
 * (Elysia checks it on the requests it serves): a lean handler must return exactly the schema's
 * shape. src/plugins/lean-routes.test.ts sends one matrix of requests both ways and requires the
 * same status, body, headers, access line, metrics and audit events.
 *
 * The pipeline order is written twice, here and in src/app.ts: request id → CORS → header guard
 * → (routing) → rate limit → auth → handler → log + metrics. Change one, change the other.
 */

type Handle = (principal: Principal) => unknown;

const LEAN = new WeakMap<object, { readonly roles: readonly Role[]; readonly handle: Handle }>();

/** A GET handler the lean path may serve: pass `handler` to `.get` and `roles` to its `auth` option. */
export function lean<T>(
  roles: readonly Role[],
  handle: (principal: Principal) => T,
): { readonly roles: readonly Role[]; readonly handler: (context: { principal: Principal }) => T } {
  const handler = ({ principal }: { principal: Principal }) => handle(principal);
  LEAN.set(handler, { roles, handle });
  return { roles, handler };
}

interface LeanRoute {
  readonly path: string;
  readonly roles: readonly Role[];
  readonly handle: Handle;
  readonly routeClass: ReturnType<typeof routeClassOf>;
}

/** What the lean path reads of an Elysia app: its route table, its own fetch and the server Elysia hands handlers. */
export interface LeanHost {
  readonly routes: readonly { method: string; path: string; handler: unknown; hooks: unknown }[];
  fetch(request: Request): Response | Promise<Response>;
  server: unknown;
}

export interface LeanDeps {
  readonly corsOrigins: readonly string[];
  readonly headerLimitBytes: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly tokens: AccessTokens;
  readonly audit: AuditHook;
  readonly rateLimiter: RateLimiter | undefined;
}

type Server = { requestIP(request: Request): { address: string } | null } | null;
const UNSUPPORTED_SCHEMAS = ["query", "params", "headers", "body", "cookie"] as const;

/** The app's routes that opted in, by path; throws if one cannot be served identically. */
function leanRoutesOf(host: LeanHost): Map<string, LeanRoute> {
  const byPath = new Map<string, LeanRoute>();
  for (const route of host.routes) {
    const spec = LEAN.get(route.handler as object);
    if (!spec) continue;
    const hooks = (route.hooks ?? {}) as Record<string, unknown>;
    const schema = UNSUPPORTED_SCHEMAS.find((part) => hooks[part] !== undefined);
    if (route.method !== "GET" || /[:*?]/.test(route.path) || schema) {
      throw new Error(
        `lean route ${route.method} ${route.path}: only a GET with a static path and no ${schema ?? "request"} schema can be lean`,
      );
    }
    byPath.set(route.path, { path: route.path, ...spec, routeClass: routeClassOf(route.path) });
  }
  return byPath;
}

/**
 * `fetch` for Bun.serve: lean routes answered here, every other request handed to `host.fetch`.
 * The route table is read on first use and again whenever routes were added since.
 */
export function leanFetch(host: LeanHost, deps: LeanDeps): (request: Request) => Response | Promise<Response> {
  let table: { size: number; byPath: Map<string, LeanRoute> } | undefined;
  const routeFor = (url: string): LeanRoute | undefined => {
    if (table?.size !== host.routes.length) table = { size: host.routes.length, byPath: leanRoutesOf(host) };
    // The path as sent, query included: "/v1/auth/me?x" matches no lean route and goes to Elysia.
    return table.byPath.get(url.slice(url.indexOf("/", url.indexOf("//") + 2)));
  };

  const cors = corsHeaders(deps.corsOrigins);
  const limiter = deps.rateLimiter;
  // The limiter's constant headers go into the prebuilt ones, so each response sets only what varies.
  const decide = limiter ? rateLimitDecider(limiter, deps.tokens, true) : undefined;
  const authorize = authorizer(deps.tokens, deps.audit);
  const record = requestRecorder(deps.metrics);
  const writeAccessLine = createAccessLog(deps.log);
  const unlimited = headersWithDefaults(SECURITY_HEADERS);
  const byClass = (routeClass: RouteClass) =>
    limiter ? headersWithDefaults({ ...SECURITY_HEADERS, ...constantRateLimitHeaders(limiter, routeClass) }) : unlimited;
  const withDefaults = { api: byClass("api"), auth: byClass("auth") };
  // Before the limiter ran (a 431), or on a route it does not limit, only the security headers.
  const headersFor = (route: LeanRoute, limited: boolean) =>
    limited && route.routeClass ? withDefaults[route.routeClass] : unlimited;

  const finish = (
    request: Request,
    requestId: string,
    route: string,
    status: number,
    principal: Principal | undefined,
  ): void => {
    const seconds = elapsedSeconds(request);
    writeAccessLine({
      requestId,
      method: "GET",
      route,
      status,
      durationMs: Math.round(seconds * 100_000) / 100,
      tenant: principal?.tid,
      principal: principal?.sub,
    });
    record("GET", route, status, seconds);
  };

  // A failure after authentication still logs who asked, as Elysia's resolved context does.
  const fail = (
    route: LeanRoute,
    request: Request,
    requestId: string,
    headers: Record<string, string>,
    routed: boolean,
    error: unknown,
    principal?: Principal,
  ): Response => {
    const set = { status: 500 as number | string, headers: headers as Record<string, unknown> };
    const body = writeProblem(problemOf(error), error, deps.log, set, route.path);
    const status = set.status as number;
    const response = new Response(body, { status, headers: headersFor(route, routed)(headers) });
    // Elysia's guard runs before routing: its 431 is labelled as unmatched.
    finish(request, requestId, routed ? route.path : UNMATCHED_ROUTE, status, principal);
    return response;
  };
  const respond = (
    route: LeanRoute,
    request: Request,
    requestId: string,
    headers: Record<string, string>,
    principal: Principal,
    value: unknown,
  ): Response => {
    const response = Response.json(value, { status: 200, headers: headersFor(route, true)(headers) });
    finish(request, requestId, route.path, 200, principal);
    return response;
  };

  /** The same steps as `serve` once one of them returned a promise (a token's first sighting, Redis). */
  const settle = async (
    route: LeanRoute,
    request: Request,
    requestId: string,
    headers: Record<string, string>,
    limited: Promise<void> | undefined,
    authorized: Principal | Promise<Principal> | undefined,
  ): Promise<Response> => {
    let principal: Principal;
    try {
      await limited;
      principal = await (authorized ?? authorize(request, route.roles, { headers }, route.path, host.server as Server));
    } catch (error) {
      return fail(route, request, requestId, headers, true, error);
    }
    try {
      return respond(route, request, requestId, headers, principal, await route.handle(principal));
    } catch (error) {
      return fail(route, request, requestId, headers, true, error, principal);
    }
  };

  // Straight-line on purpose: no closure per request on the path that decides synchronously.
  const serve = (route: LeanRoute, request: Request): Response | Promise<Response> => {
    const requestId = beginRequest(request);
    // Insertion order as in Elysia's set.headers: request id, CORS, rate limit, problem headers.
    const headers: Record<string, string> = { [REQUEST_ID_HEADER]: requestId };
    cors?.(request, headers);
    let routed = false;
    let principal: Principal | undefined;
    try {
      checkHeaderSize(request, deps.headerLimitBytes);
      routed = true;
      const limited =
        decide && route.routeClass ? decide(route.routeClass, request, host.server as Server, headers) : undefined;
      if (limited instanceof Promise) return settle(route, request, requestId, headers, limited, undefined);
      const authorized = authorize(request, route.roles, { headers }, route.path, host.server as Server);
      if (authorized instanceof Promise) return settle(route, request, requestId, headers, undefined, authorized);
      principal = authorized;
      const value = route.handle(principal);
      if (value instanceof Promise) {
        const asked = principal;
        return value.then(
          (resolved) => respond(route, request, requestId, headers, asked, resolved),
          (error) => fail(route, request, requestId, headers, true, error, asked),
        );
      }
      return respond(route, request, requestId, headers, principal, value);
    } catch (error) {
      return fail(route, request, requestId, headers, routed, error, principal);
    }
  };

  return (request) => {
    if (request.method !== "GET") return host.fetch(request);
    const route = routeFor(request.url);
    return route ? serve(route, request) : host.fetch(request);
  };
}
