import { Elysia } from "elysia";
import type { Decision } from "../lib/gcra";
import { HttpProblem } from "../lib/problem";
import type { AccessTokens } from "../modules/auth/access-tokens";
import { authenticate } from "./auth";
import type { RateLimiter, RouteClass } from "./rate-limiter";

/** The token endpoint and RFC 7009 revoke: anonymous, and where passwords and keys are guessed. */
const AUTH_ROUTES = new Set(["/v1/auth/token", "/v1/auth/revoke"]);
const ANONYMOUS_TENANT = "-";
const WINDOW_SECONDS = 60;
const BEARER_PREFIX = /^bearer /i;

/** `auth`, `api` or undefined (health, metrics, docs, JWKS and anything outside /v1 are not limited). */
export function routeClassOf(route: string): RouteClass | undefined {
  if (AUTH_ROUTES.has(route)) return "auth";
  return route.startsWith("/v1/") ? "api" : undefined;
}

type Headers = Record<string, unknown>;
type Server = { requestIP(request: Request): { address: string } | null } | null;

/** Decides one request and writes its headers (a 429 HttpProblem when refused); sync in process, a promise through Redis or on a token's first sighting. */
export type RateLimitDecider = (
  routeClass: RouteClass,
  request: Request,
  server: Server,
  headers: Headers,
) => void | Promise<void>;

/**
 * Rate limits per tenant + principal (the verified token's `tid` and `sub`; the client IP for
 * anonymous callers and tokens that do not verify), per route class. Runs as a transform hook:
 * after routing (so the route template picks the class and metrics label 429s by route) and
 * before validation and the auth macro, so bad input and bad tokens are limited too. The token
 * is verified through the auth plugin's per-request memo, so the macro does not verify it again.
 *
 * Every limited route answers with RateLimit-Policy and RateLimit
 * (draft-ietf-httpapi-ratelimit-headers-10 syntax) and X-RateLimit-Limit/Remaining/Reset; a
 * refusal is a 429 problem with Retry-After.
 */
export const rateLimit = (limiter: RateLimiter, tokens: AccessTokens) => {
  const decide = rateLimitDecider(limiter, tokens);
  const plugin = new Elysia({ name: "rate-limit" });
  return plugin.onTransform({ as: "global" }, ({ request, route, set, server }) => {
    const routeClass = routeClassOf(route);
    if (routeClass === undefined) return;
    return decide(routeClass, request, server, set.headers);
  });
};

/** The limiter's decision for a request, shared by the Elysia hook and the lean path (src/plugins/lean-routes.ts). */
export function rateLimitDecider(limiter: RateLimiter, tokens: AccessTokens): RateLimitDecider {
  const policies: Record<RouteClass, string> = {
    auth: `"auth";q=${limiter.limitOf("auth")};w=${WINDOW_SECONDS}`,
    api: `"api";q=${limiter.limitOf("api")};w=${WINDOW_SECONDS}`,
  };

  const apply = (routeClass: RouteClass, decision: Decision, headers: Headers) => {
    const resetSeconds = Math.ceil((decision.allowed ? decision.resetMs : decision.retryAfterMs) / 1000);
    headers["ratelimit-policy"] = policies[routeClass];
    headers.ratelimit = `"${routeClass}";r=${decision.remaining};t=${resetSeconds}`;
    headers["x-ratelimit-limit"] = String(decision.limit);
    headers["x-ratelimit-remaining"] = String(decision.remaining);
    headers["x-ratelimit-reset"] = String(Math.ceil((Date.now() + decision.resetMs) / 1000));
    if (decision.allowed) return;
    const retryAfter = Math.max(1, resetSeconds);
    throw new HttpProblem(
      429,
      "rate-limited",
      `Too many ${routeClass} requests: the limit is ${decision.limit} per minute. Retry in ${retryAfter} s.`,
      { headers: { "retry-after": String(retryAfter) } },
    );
  };

  return (routeClass, request, server, headers) => {
    const anonymous = () => {
      const ip = server?.requestIP(request)?.address ?? "unknown";
      return limiter.decide(routeClass, ANONYMOUS_TENANT, `ip:${ip}`);
    };
    const byPrincipal = (principal: { tid: string; sub: string }) =>
      limiter.decide(routeClass, principal.tid, `sub:${principal.sub}`);
    const settle = (decision: Decision | Promise<Decision>) =>
      decision instanceof Promise
        ? decision.then((d) => apply(routeClass, d, headers))
        : apply(routeClass, decision, headers);

    // The token endpoint's Authorization is Basic client credentials: its callers are anonymous.
    if (routeClass === "auth" || !BEARER_PREFIX.test(request.headers.get("authorization") ?? "")) {
      return settle(anonymous());
    }
    let principal: ReturnType<typeof authenticate>;
    try {
      principal = authenticate(tokens, request);
    } catch {
      return settle(anonymous());
    }
    if (!(principal instanceof Promise)) return settle(byPrincipal(principal));
    return principal.then(
      (verified) => settle(byPrincipal(verified)),
      () => settle(anonymous()),
    );
  };
}
