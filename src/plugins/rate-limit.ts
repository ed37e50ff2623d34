import { isIP } from "node:net";
import { Elysia } from "elysia";
import type { Decision } from "../lib/gcra";
import { v4Of, v6Groups } from "../lib/ip-address";
import { HttpProblem } from "../lib/problem";
import { RedisKeys } from "../lib/redis-keys";
import type { AccessTokens } from "../modules/auth/access-tokens";
import { authenticate } from "./auth";
import type { RateLimiter, RouteClass } from "./rate-limiter";

/** The token endpoint and RFC 7009 revoke: anonymous, and where passwords and keys are guessed. */
const AUTH_ROUTES = new Set(["/v1/auth/token", "/v1/auth/revoke"]);
const ANONYMOUS_TENANT = "-";
const WINDOW_SECONDS = 60;

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

/**
 * An anonymous caller's limiter key: its IPv4 address (an IPv4-mapped IPv6 one included), or the
 * /64 of an IPv6 address. A host is commonly given a whole /64: keyed per address, it could take
 * a fresh quota (a fresh run of password guesses) with every one of its 2^64 addresses.
 */
export function clientKeyOf(address: string | undefined): string {
  if (address === undefined) return "ip:unknown";
  const bare = address.replace(/%.*$/, "");
  if (isIP(bare) !== 6) return `ip:${bare}`;
  const groups = v6Groups(bare.toLowerCase());
  const mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (mapped) return `ip:${v4Of(groups[6] ?? 0, groups[7] ?? 0)}`;
  return `ip6:${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(":")}::/64`;
}

/** The headers of a route class that never change: the lean path prebuilds them into its responses. */
export function constantRateLimitHeaders(limiter: RateLimiter, routeClass: RouteClass): Record<string, string> {
  const limit = limiter.limitOf(routeClass);
  return { "ratelimit-policy": `"${routeClass}";q=${limit};w=${WINDOW_SECONDS}`, "x-ratelimit-limit": String(limit) };
}

// ? A principal (the verified token's cached claims, the same object on every request of that
// token) keeps its limiter keys in a symbol-keyed slot: building and hashing the key string on
// every request cost more than the decision itself.
const KEYS = Symbol("warden.rateLimitKeys");
type Keyed = { readonly tid: string; readonly sub: string; [KEYS]?: Partial<Record<RouteClass, string>> };

function keyOf(routeClass: RouteClass, principal: Keyed): string {
  let keys = principal[KEYS];
  if (keys === undefined) {
    keys = {};
    principal[KEYS] = keys;
  }
  let key = keys[routeClass];
  if (key === undefined) {
    key = RedisKeys.rateLimit(routeClass, principal.tid, `sub:${principal.sub}`);
    keys[routeClass] = key;
  }
  return key;
}

/**
 * The limiter's decision for a request, shared by the Elysia hook and the lean path
 * (src/plugins/lean-routes.ts). With `constantsPrebuilt`, the two headers that never change
 * (constantRateLimitHeaders) are left to the caller.
 */
export function rateLimitDecider(
  limiter: RateLimiter,
  tokens: AccessTokens,
  constantsPrebuilt = false,
): RateLimitDecider {
  const constants: Record<RouteClass, Record<string, string>> = {
    auth: constantRateLimitHeaders(limiter, "auth"),
    api: constantRateLimitHeaders(limiter, "api"),
  };

  const apply = (routeClass: RouteClass, decision: Decision, headers: Headers): void => {
    const resetSeconds = Math.ceil((decision.allowed ? decision.resetMs : decision.retryAfterMs) / 1000);
    if (!constantsPrebuilt) Object.assign(headers, constants[routeClass]);
    headers.ratelimit = `"${routeClass}";r=${decision.remaining};t=${resetSeconds}`;
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
  const settle = (routeClass: RouteClass, decision: Decision | Promise<Decision>, headers: Headers) =>
    decision instanceof Promise
      ? decision.then((d) => apply(routeClass, d, headers))
      : apply(routeClass, decision, headers);
  const anonymous = (routeClass: RouteClass, request: Request, server: Server, headers: Headers) => {
    const ip = server?.requestIP(request)?.address;
    return settle(routeClass, limiter.decide(routeClass, ANONYMOUS_TENANT, clientKeyOf(ip)), headers);
  };

  return (routeClass, request, server, headers) => {
    // The token endpoint's Authorization is Basic client credentials: its callers are anonymous,
    // as are requests without a bearer token (authenticate refuses them, and remembers why).
    if (routeClass === "auth") return anonymous(routeClass, request, server, headers);
    let principal: ReturnType<typeof authenticate>;
    try {
      principal = authenticate(tokens, request);
    } catch {
      return anonymous(routeClass, request, server, headers);
    }
    if (!(principal instanceof Promise)) {
      return settle(routeClass, limiter.decideKey(routeClass, keyOf(routeClass, principal)), headers);
    }
    return principal.then(
      (verified) => settle(routeClass, limiter.decideKey(routeClass, keyOf(routeClass, verified)), headers),
      () => anonymous(routeClass, request, server, headers),
    );
  };
}
