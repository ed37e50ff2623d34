import type { Role } from "../../db/schema";
import type { Logger } from "../lib/logger";
import { createAccessLog } from "../lib/logger";
import { pathAndQueryOf } from "../lib/request-target";
import type { AuditHook } from "../modules/audit/hook";
import type { AccessTokens } from "../modules/auth/access-tokens";
import { authorizer, type Principal } from "./auth";
import { refuseUnknownField } from "./body-guard";
import { problemOf, unparsable, writeProblem } from "./errors";
import { type BodyStep, elysiaBodyStep } from "./lean-body";
import { type Metrics, requestRecorder } from "./metrics";
import { constantRateLimitHeaders, rateLimitDecider, routeClassOf } from "./rate-limit";
import type { RateLimiter, RouteClass } from "./rate-limiter";
import { beginRequest, elapsedSeconds, REQUEST_ID_HEADER, UNMATCHED_ROUTE } from "./request-context";
import {
  guardRequest,
  parseBody,
  type RequestLimits,
  refuseFormBody,
  refuseUnkeptValues,
  takesJsonOnly,
} from "./request-guards";
import { responderWithDefaults } from "./response-adapter";
import { corsHeaders, SECURITY_HEADERS } from "./security-headers";

/**
 * The lean path: the hottest routes served in front of Elysia, from the same `fetch`, by the
 * same pieces the Elysia pipeline runs (request id, CORS, request guards, body parser, rate
 * limit, body validation, auth, handler, problem+json, access log, metrics), without Elysia's
 * per-route machinery (context object, hook chain, response mapping, the after-response
 * `setImmediate`).
 *
 * A route opts in where it is declared: `const me = lean(ANY_ROLE, (principal) => …)`, then
 * `.get(path, me.handler, { auth: me.roles, response, detail })`; for a write,
 * `const create = leanPost(DEVELOPER, 201, (principal, body, context) => …)`, then
 * `.post(path, create.handler, { auth: create.roles, body: schema, response, detail })`. The
 * route stays in Elysia (the OpenAPI document, the access matrix, 405s, and every request the
 * lean path passes on); the lean path finds it in the app's route table by its handler, so path,
 * roles, body schema and handler are written once. Only a static path may opt in, a GET with no
 * query, params, headers or body schema, a POST with an object body schema (no defaults or
 * transforms) and nothing else; anything else throws when the table is built.
 *
 * The lean path answers a GET or POST whose URL path equals a lean route's exactly. Everything
 * else goes to Elysia unchanged: other methods (HEAD, OPTIONS and CORS preflights), a query
 * string, a trailing slash, percent-encoding. It answers the handler's status, and the problems
 * the pipeline raises (431, 413, 415, 400, 429, 422, 401, 403) or a handler's own HttpProblem or
 * crash (500), exactly as the errors hook would. The handler's value is not checked against the
 * route's response schema (Elysia checks it on the requests it serves): a lean handler must
 * return exactly the schema's shape. src/plugins/lean-routes.test.ts sends one matrix of
 * requests both ways and requires the same status, body, headers, access line, metrics and audit
 * events.
 *
 * The pipeline order is written twice, here and in src/app.ts: request id → CORS → request
 * guards → (routing) → body parser → rate limit → body validation → auth → handler → log +
 * metrics. Change one, change the other.
 */

/** Where a request got to, for its answer's headers and its metric label. */
const Reached = {
  /** Refused by the guards Elysia runs before routing: labelled unmatched. */
  Guards: 0,
  Routed: 1,
  /** The limiter ran: its headers are on the answer. */
  Limited: 2,
} as const;
type Reached = (typeof Reached)[keyof typeof Reached];

type Server = { requestIP(request: Request): { address: string } | null } | null;

/** What a lean write's handler may read and set besides its principal and body. */
export interface LeanContext {
  readonly request: Request;
  /** The response headers so far (Elysia's `set.headers`): a handler may add its own. */
  readonly headers: Record<string, unknown>;
  /** The answer's status, the route's declared one unless the handler changes it. */
  status: number;
  readonly server: Server;
}

type Handle = (principal: Principal, body: unknown, context: LeanContext) => unknown;

interface LeanSpec {
  readonly method: "GET" | "POST";
  readonly roles: readonly Role[];
  readonly status: number;
  readonly handle: Handle;
}

const LEAN = new WeakMap<object, LeanSpec>();

/** A GET handler the lean path may serve: pass `handler` to `.get` and `roles` to its `auth` option. */
export function lean<T>(
  roles: readonly Role[],
  handle: (principal: Principal) => T,
): { readonly roles: readonly Role[]; readonly handler: (context: { principal: Principal }) => T } {
  const handler = ({ principal }: { principal: Principal }) => handle(principal);
  LEAN.set(handler, { method: "GET", roles, status: 200, handle: (principal) => handle(principal) });
  return { roles, handler };
}

interface ElysiaWriteContext<B> {
  principal: Principal;
  body: B;
  request: Request;
  set: { status?: number | string; headers: Record<string, unknown> };
  server: Server;
}

/**
 * A POST handler the lean path may serve, answering `status` unless it sets `context.status`:
 * pass `handler` to `.post` and `roles` to its `auth` option, with the route's `body` schema.
 */
export function leanPost<B, T>(
  roles: readonly Role[],
  status: number,
  handle: (principal: Principal, body: B, context: LeanContext) => T | Promise<T>,
): { readonly roles: readonly Role[]; readonly handler: (context: ElysiaWriteContext<B>) => Promise<T> } {
  // Destructured so Elysia's static analysis prepares exactly these parts of its context; async
  // so Elysia awaits it inside its error handling (a returned promise that rejects would escape
  // its `handle` instead of becoming a problem).
  const handler = async ({ principal, body, request, set, server }: ElysiaWriteContext<B>): Promise<T> => {
    const context: LeanContext = { request, headers: set.headers, status, server };
    const value = await handle(principal, body, context);
    set.status = context.status;
    return value;
  };
  LEAN.set(handler, { method: "POST", roles, status, handle: handle as Handle });
  return { roles, handler };
}

interface LeanRoute extends LeanSpec {
  readonly path: string;
  readonly routeClass: RouteClass | undefined;
  /** Defaults, normalization, the 422 check and decoding of a POST's parsed body. */
  readonly body: BodyStep | undefined;
  /** A POST's body schema, for the fields it does not name (src/plugins/body-guard.ts). */
  readonly bodySchema: object | undefined;
  /** Its `parse` names JSON alone: a form body is a 415. */
  readonly jsonOnly: boolean;
}

/** What the lean path reads of an Elysia app: its route table and config, its own fetch and the server Elysia hands handlers. */
export interface LeanHost {
  readonly routes: readonly { method: string; path: string; handler: unknown; hooks: unknown }[];
  readonly config?: { readonly normalize?: unknown; readonly allowUnsafeValidationDetails?: boolean };
  fetch(request: Request): Response | Promise<Response>;
  server: unknown;
}

export interface LeanDeps {
  readonly corsOrigins: readonly string[];
  readonly limits: RequestLimits;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly tokens: AccessTokens;
  readonly audit: AuditHook;
  readonly rateLimiter: RateLimiter | undefined;
}

const GET_UNSUPPORTED = ["query", "params", "headers", "body", "cookie"] as const;
const POST_UNSUPPORTED = ["query", "params", "headers", "cookie"] as const;

function refuse(route: { method: string; path: string }, why: string): never {
  throw new Error(`lean route ${route.method} ${route.path}: ${why}`);
}

/** The app's routes that opted in, by method and path; throws if one cannot be served identically. */
function leanRoutesOf(host: LeanHost): Map<string, LeanRoute> {
  const byKey = new Map<string, LeanRoute>();
  for (const route of host.routes) {
    const spec = LEAN.get(route.handler as object);
    if (!spec) continue;
    const hooks = (route.hooks ?? {}) as Record<string, unknown>;
    const unsupported = (spec.method === "GET" ? GET_UNSUPPORTED : POST_UNSUPPORTED).find(
      (part) => hooks[part] !== undefined,
    );
    if (route.method !== spec.method || /[:*?]/.test(route.path) || unsupported) {
      refuse(route, `only a ${spec.method} with a static path and no ${unsupported ?? "request"} schema can be lean`);
    }
    let body: BodyStep | undefined;
    try {
      body = spec.method === "POST" ? elysiaBodyStep(hooks.body, host.config ?? {}) : undefined;
    } catch (error) {
      refuse(route, (error as Error).message);
    }
    byKey.set(`${spec.method} ${route.path}`, {
      ...spec,
      path: route.path,
      routeClass: routeClassOf(route.path),
      body,
      bodySchema: spec.method === "POST" ? (hooks.body as object) : undefined,
      jsonOnly: takesJsonOnly(hooks),
    });
  }
  return byKey;
}

/**
 * `fetch` for Bun.serve: lean routes answered here, every other request handed to `host.fetch`.
 * The route table is read on first use and again whenever routes were added since.
 */
export function leanFetch(host: LeanHost, deps: LeanDeps): (request: Request) => Response | Promise<Response> {
  let table: { size: number; byKey: Map<string, LeanRoute> } | undefined;
  const routeFor = (method: string, url: string): LeanRoute | undefined => {
    if (table?.size !== host.routes.length) table = { size: host.routes.length, byKey: leanRoutesOf(host) };
    // The path as sent, query included: "/v1/auth/me?x" matches no lean route and goes to Elysia.
    return table.byKey.get(`${method} ${pathAndQueryOf(url)}`);
  };

  const cors = corsHeaders(deps.corsOrigins);
  const limiter = deps.rateLimiter;
  // The limiter's constant headers go into the prebuilt ones, so each response sets only what varies.
  const decide = limiter ? rateLimitDecider(limiter, deps.tokens, true) : undefined;
  const authorize = authorizer(deps.tokens, deps.audit);
  const record = requestRecorder(deps.metrics);
  const writeAccessLine = createAccessLog(deps.log);
  const unlimited = responderWithDefaults(SECURITY_HEADERS);
  const byClass = (routeClass: RouteClass) =>
    limiter
      ? responderWithDefaults({ ...SECURITY_HEADERS, ...constantRateLimitHeaders(limiter, routeClass) })
      : unlimited;
  const responders = { api: byClass("api"), auth: byClass("auth") };
  // Before the limiter ran (431, 413, 415, 400), or on a route it does not limit, only the security headers.
  const responderFor = (route: LeanRoute, limited: boolean) =>
    limited && route.routeClass ? responders[route.routeClass] : unlimited;

  const finish = (
    request: Request,
    requestId: string,
    route: LeanRoute,
    routed: boolean,
    status: number,
    principal: Principal | undefined,
  ): void => {
    const seconds = elapsedSeconds(request);
    const label = routed ? route.path : UNMATCHED_ROUTE;
    writeAccessLine({
      requestId,
      method: route.method,
      route: label,
      status,
      durationMs: Math.round(seconds * 100_000) / 100,
      tenant: principal?.tid,
      principal: principal?.sub,
    });
    record(route.method, label, status, seconds);
  };

  // A failure after authentication still logs who asked, as Elysia's resolved context does.
  const fail = (
    route: LeanRoute,
    request: Request,
    requestId: string,
    headers: Record<string, string>,
    reached: Reached,
    error: unknown,
    principal?: Principal,
  ): Response => {
    const set = { status: 500 as number | string, headers: headers as Record<string, unknown> };
    const body = writeProblem(problemOf(error, request), error, deps.log, set, route.path);
    const status = set.status as number;
    const response = responderFor(route, reached === Reached.Limited).text(body, status, headers);
    finish(request, requestId, route, reached !== Reached.Guards, status, principal);
    return response;
  };
  const respond = (
    route: LeanRoute,
    request: Request,
    requestId: string,
    headers: Record<string, string>,
    principal: Principal,
    value: unknown,
    status: number,
  ): Response => {
    const response = responderFor(route, true).json(value, status, headers);
    finish(request, requestId, route, true, status, principal);
    return response;
  };

  const NO_CONTEXT: LeanContext = {
    request: new Request("http://lean.invalid/"),
    headers: {},
    status: 200,
    server: null,
  };

  // Straight-line on purpose: no closure per request on the path that decides synchronously, and
  // a promise (Redis, a token's first sighting, an async handler) only where one step returns one.
  const handleGet = (
    route: LeanRoute,
    request: Request,
    requestId: string,
    headers: Record<string, string>,
    principal: Principal,
  ): Response | Promise<Response> => {
    try {
      // A GET handler takes the principal alone (see `lean`): no context is built for it.
      const value = route.handle(principal, undefined, NO_CONTEXT);
      if (!(value instanceof Promise)) return respond(route, request, requestId, headers, principal, value, 200);
      return value.then(
        (resolved) => respond(route, request, requestId, headers, principal, resolved, 200),
        (error) => fail(route, request, requestId, headers, Reached.Limited, error, principal),
      );
    } catch (error) {
      return fail(route, request, requestId, headers, Reached.Limited, error, principal);
    }
  };
  const authorizeGet = (
    route: LeanRoute,
    request: Request,
    requestId: string,
    headers: Record<string, string>,
  ): Response | Promise<Response> => {
    try {
      const authorized = authorize(request, route.roles, { headers }, route.path, host.server as Server);
      if (!(authorized instanceof Promise)) return handleGet(route, request, requestId, headers, authorized);
      return authorized.then(
        (principal) => handleGet(route, request, requestId, headers, principal),
        (error) => fail(route, request, requestId, headers, Reached.Limited, error),
      );
    } catch (error) {
      return fail(route, request, requestId, headers, Reached.Limited, error);
    }
  };
  const serveGet = (route: LeanRoute, request: Request): Response | Promise<Response> => {
    const requestId = beginRequest(request);
    // Insertion order as in Elysia's set.headers: request id, CORS, rate limit, problem headers.
    const headers: Record<string, string> = { [REQUEST_ID_HEADER]: requestId };
    cors?.(request, headers);
    let reached: Reached = Reached.Guards;
    try {
      guardRequest(request, deps.limits);
      reached = Reached.Limited;
      const limited =
        decide && route.routeClass ? decide(route.routeClass, request, host.server as Server, headers) : undefined;
      if (limited instanceof Promise) {
        return limited.then(
          () => authorizeGet(route, request, requestId, headers),
          (error) => fail(route, request, requestId, headers, Reached.Limited, error),
        );
      }
    } catch (error) {
      return fail(route, request, requestId, headers, reached, error);
    }
    return authorizeGet(route, request, requestId, headers);
  };

  const servePost = async (route: LeanRoute, request: Request): Promise<Response> => {
    const requestId = beginRequest(request);
    const headers: Record<string, string> = { [REQUEST_ID_HEADER]: requestId };
    cors?.(request, headers);
    let reached: Reached = Reached.Guards;
    let principal: Principal | undefined;
    try {
      guardRequest(request, deps.limits);
      reached = Reached.Routed;
      if (route.jsonOnly) refuseFormBody(request);
      const parsed = await parseBody(request, deps.limits.bodyLimitBytes);
      // Elysia then hands the request to the route's own parsers, which cannot read it either.
      if (parsed === undefined) throw unparsable(request);
      const server = host.server as Server;
      reached = Reached.Limited;
      if (decide && route.routeClass) await decide(route.routeClass, request, server, headers);
      // Authorised before the body step, as the auth macro does in Elysia's transform: 401/403 before 422.
      const authorized = authorize(request, route.roles, { headers }, route.path, server);
      const caller = authorized instanceof Promise ? await authorized : authorized;
      refuseUnkeptValues(request);
      const body = (route.body as BodyStep)(parsed);
      // After validation, where Elysia's body guard runs (a beforeHandle hook, whose failures log no caller).
      refuseUnknownField(route.bodySchema as object, parsed, request);
      principal = caller;
      const context: LeanContext = { request, headers, status: route.status, server };
      const value = await route.handle(principal, body, context);
      return respond(route, request, requestId, headers, principal, value, context.status);
    } catch (error) {
      return fail(route, request, requestId, headers, reached, error, principal);
    }
  };

  return (request) => {
    const method = request.method;
    if (method !== "GET" && method !== "POST") return host.fetch(request);
    const route = routeFor(method, request.url);
    if (!route) return host.fetch(request);
    return method === "GET" ? serveGet(route, request) : servePost(route, request);
  };
}
