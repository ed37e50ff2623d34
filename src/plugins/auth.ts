import { Elysia } from "elysia";
import { ROLES, type Role } from "../../db/schema";
import { HttpProblem } from "../lib/problem";
import { pathOf } from "../lib/request-target";
import { AuditAction } from "../modules/audit/actions";
import { type AuditHook, actorOf } from "../modules/audit/hook";
import { type AccessClaims, type AccessTokens, InvalidToken } from "../modules/auth/access-tokens";
import { requestMetaOf } from "./request-context";
import { refuseUnkeptValues } from "./request-guards";

export const ANY_ROLE: readonly Role[] = ROLES;
export const ADMIN: readonly Role[] = ["admin"];
export const DEVELOPER: readonly Role[] = ["admin", "developer"];

export type Principal = AccessClaims;

// RFC 6750 §2.1: "Bearer" 1*SP b64token.
const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i;
const BEARER_SCHEME = /^Bearer /i;
const BEARER_SCHEME_LENGTH = "Bearer ".length;

function unauthorized(description?: string): HttpProblem {
  // RFC 6750 §3.1: no error code when the request carried no credentials at all.
  const challenge = description
    ? `Bearer realm="warden", error="invalid_token", error_description="${description.replace(/"/g, "'")}"`
    : 'Bearer realm="warden"';
  return new HttpProblem(
    401,
    description ? "invalid-token" : "missing-token",
    description ?? "A bearer token is required.",
    {
      headers: { "www-authenticate": challenge },
    },
  );
}

/** Authenticates a request and checks it may use `route`: its principal, or a 401/403 HttpProblem. */
export type Authorizer = (
  request: Request,
  roles: readonly Role[],
  set: Set,
  route: string,
  server: Server,
) => Principal | Promise<Principal>;

/**
 * The token (through `authenticate`'s memo), `X-Client-ID` against the token's tenant and the
 * caller's role; a denial is audited. Shared by the `auth` macro and the lean path
 * (src/plugins/lean-routes.ts).
 */
export function authorizer(tokens: AccessTokens, audit: AuditHook): Authorizer {
  const authorize = (
    principal: Principal,
    roles: readonly Role[],
    request: Request,
    set: Set,
    route: string,
    server: Server,
  ): Principal => {
    const client = request.headers.get("x-client-id");
    const denial =
      client !== null && client !== principal.tid
        ? "X-Client-ID does not match the token's tenant."
        : !roles.includes(principal.role)
          ? `This route needs the role ${roles.join(" or ")}.`
          : undefined;
    if (denial) {
      audit.record({
        action: AuditAction.accessDenied,
        outcome: "denied",
        tenantId: principal.tid,
        actor: actorOf(principal),
        target: { type: "route", id: `${request.method} ${route}` },
        reason: denial,
        // The path as asked, ids included: which user or key the attempt was on.
        params: { path: pathOf(request.url) },
        ...requestMetaOf(request, set, server),
      });
      throw new HttpProblem(403, "forbidden", denial);
    }
    return principal;
  };
  // Not async: a token seen before is checked synchronously (cache, expiry, revocation); only a
  // first sighting waits for the signature check.
  return (request, roles, set, route, server) => {
    const outcome = authenticate(tokens, request);
    if (outcome instanceof Promise) {
      return outcome.then((verified) => authorize(verified, roles, request, set, route, server));
    }
    return authorize(outcome, roles, request, set, route, server);
  };
}

/**
 * The one place requests are authenticated: `{ auth: ROLES }` on a route verifies the bearer
 * token once (cached verification, revocation, key retirement), checks `X-Client-ID` against
 * the token's tenant and the caller's role, and hands the handler a typed `principal`.
 */
export const authPlugin = (tokens: AccessTokens, audit: AuditHook) => {
  const authorize = authorizer(tokens, audit);
  return new Elysia({ name: "auth" }).macro({
    auth: (roles: readonly Role[]) => ({
      detail: { security: [{ bearer: [] }] },
      // ? `return f(…)` on purpose: Elysia decides from the source text whether to await a hook
      // (`return x ? … : …` reads as synchronous, and a first sighting's promise would be lost).
      // Checked in transform, before the body is validated: a caller who may not use the route
      // learns nothing about what it takes (401/403 before 422). The verification is memoised on
      // the request, so resolve only hands the handler the principal.
      transform({ request, set, route, server }): void | Promise<void> {
        return allowed(authorize(request, roles, set, route, server), request);
      },
      resolve({ request }): { principal: Principal } | Promise<{ principal: Principal }> {
        return resolved(authenticate(tokens, request));
      },
    }),
  });
};

/** Once the caller may use the route: a body value the service cannot keep is its 422 (request-guards). */
const allowed = (principal: Principal | Promise<Principal>, request: Request) =>
  principal instanceof Promise ? principal.then(() => refuseUnkeptValues(request)) : refuseUnkeptValues(request);
const asResolved = (principal: Principal) => ({ principal });
const resolved = (principal: Principal | Promise<Principal>) =>
  principal instanceof Promise ? principal.then(asResolved) : asResolved(principal);

type Outcome = Principal | Promise<Principal> | { readonly failed: unknown };
// ? The rate limiter keys authenticated requests by the verified principal before the macro runs;
// both ask here, so a request's token is verified (or refused) once. Kept in a symbol-keyed slot
// on the request: a WeakMap entry per request cost ~0.1 µs, mostly in the garbage collector.
const OUTCOME = Symbol("warden.authOutcome");
type Memo = Request & { [OUTCOME]?: Outcome };

/**
 * The request's verified principal (a promise on a token's first sighting), or a 401
 * HttpProblem saying why not. Memoised per request.
 */
export function authenticate(tokens: AccessTokens, request: Request): Principal | Promise<Principal> {
  let outcome = (request as Memo)[OUTCOME];
  if (outcome === undefined) {
    try {
      outcome = verifyBearer(tokens, request);
    } catch (error) {
      outcome = { failed: error };
    }
    (request as Memo)[OUTCOME] = outcome;
  }
  if ("failed" in outcome) throw outcome.failed;
  return outcome;
}

function verifyBearer(tokens: AccessTokens, request: Request): Principal | Promise<Principal> {
  const header = request.headers.get("authorization");
  if (header === null) throw unauthorized();
  // A token the cache holds verbatim was verified, so it has the right shape; the shape check (a
  // regex over ~450 characters) only has to run before a first verification.
  let token = BEARER_SCHEME.test(header) ? header.slice(BEARER_SCHEME_LENGTH) : undefined;
  let cached: Principal | undefined;
  try {
    cached = token === undefined ? undefined : tokens.verifyCached(token);
  } catch (error) {
    throw asUnauthorized(error);
  }
  if (cached) return cached;
  // Another scheme (Basic, Digest…) carries no credentials this API takes: RFC 6750 §3.1 answers
  // that with the bare challenge, as a request without any.
  if (!/^Bearer(\s|$)/i.test(header)) throw unauthorized();
  token = BEARER.exec(header)?.[1];
  if (token === undefined) throw unauthorized("the Authorization header must be 'Bearer <token>'");
  return tokens.verify(token).catch((error) => {
    throw asUnauthorized(error);
  });
}

type Set = { headers: Record<string, unknown> };
type Server = Parameters<typeof requestMetaOf>[2];

function asUnauthorized(error: unknown): unknown {
  return error instanceof InvalidToken ? unauthorized(error.description) : error;
}
