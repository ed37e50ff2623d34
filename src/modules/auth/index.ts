import { Elysia, t } from "elysia";
import { OAUTH_NO_STORE } from "../../lib/oauth";
import { responseHeaders } from "../../lib/openapi-shape";
import { pageOf } from "../../lib/paging";
import { HttpProblem } from "../../lib/problem";
import { ANY_ROLE, authPlugin } from "../../plugins/auth";
import { lean } from "../../plugins/lean-routes";
import type { RateLimiter } from "../../plugins/rate-limiter";
import { requestMetaOf } from "../../plugins/request-context";
import { JSON_OR_FORM, parsedBodyOf } from "../../plugins/request-guards";
import { jwks, me, revokeRequest, sessionList, sessionPage, tokenRequest, tokenResponse } from "./model";
import { publicIdentity, publicSession } from "./public";
import { oauthError } from "./service";
import type { Security } from "./setup";

/** The token endpoint's parameters, each sent once. */
type OAuthParameters = Record<string, string | undefined>;

function required(body: OAuthParameters, field: string): string {
  const value = body[field];
  if (!value) throw oauthError("invalid_request", `The ${field} parameter is required.`, field);
  return value;
}

/**
 * What RFC 6749 makes an invalid request before any parameter is read: a body that is no object
 * of parameters (a parameter sent twice, §3.2, is refused for every route by the body parser).
 */
function parameters(body: unknown, request: Request): OAuthParameters {
  // As parsed: Elysia's normalizer makes {} of a JSON array, which would then lack grant_type.
  const parsed = parsedBodyOf(request);
  const raw = parsed === undefined ? body : parsed;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw) || typeof body !== "object" || body === null) {
    throw oauthError("invalid_request", "The body must be an object of parameters (JSON or a form).", "");
  }
  // §3.2: a parameter sent without a value is treated as omitted.
  const sent: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(body)) if (value !== "") sent[name] = value;
  return sent;
}

// Short enough that a rotation's new `next` key reaches caches long before it signs.
const JWKS_CACHE = "public, max-age=300";

/** An Authorization header with the Basic scheme, credentials or not. */
const BASIC = /^basic(\s|$)/i;

/** RFC 6749 §5.2: a client that authenticated with the Authorization header gets 401 and a challenge. */
function asBasicChallenge(error: unknown): unknown {
  if (!(error instanceof HttpProblem) || error.slug !== "invalid-client") return error;
  return new HttpProblem(401, error.slug, error.detail, {
    ...error.options,
    headers: { ...error.headers, "www-authenticate": 'Basic realm="warden"' },
  });
}

/**
 * RFC 6749 §2.3.1 client_secret_basic: `Authorization: Basic base64(client_id:client_secret)`,
 * where the secret may be the whole `wdn_…` key or just its secret part.
 */
function basicCredentials(request: Request): { client_id: string; client_secret: string } | undefined {
  const header = request.headers.get("authorization");
  if (header === null || !BASIC.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw oauthError("invalid_client", "Basic credentials must be client_id:client_secret.");
  let id: string;
  let secret: string;
  try {
    id = decodeURIComponent(decoded.slice(0, colon));
    secret = decodeURIComponent(decoded.slice(colon + 1));
  } catch {
    throw oauthError("invalid_client", "Basic credentials are not valid form-encoding.");
  }
  const key = apiKeyOf(id || undefined, secret);
  // No user name with the whole key as the password (`curl -u ":wdn_…"`): the key names its client.
  return { client_id: id || (API_KEY_ID.exec(key)?.[1] ?? ""), client_secret: key };
}

const API_KEY_ID = /^wdn_([0-9a-z]{16})_/;

/** The client a Basic header names, if one is sent (401 with a challenge when it is unusable), the body agreeing. */
function basicClient(request: Request, body: OAuthParameters): ReturnType<typeof basicCredentials> {
  let client: ReturnType<typeof basicCredentials>;
  try {
    client = basicCredentials(request);
  } catch (error) {
    throw asBasicChallenge(error);
  }
  if (client) refuseSecondClient(body, client);
  return client;
}

/**
 * A client authenticating in the body (client_secret, and client_id with the secret part), if it
 * does. A client_id alone authenticates nothing: a public client names itself so (§3.2.1).
 */
function bodyCredentials(body: OAuthParameters): { client_id: string; client_secret: string } | undefined {
  if (body.client_secret === undefined) return undefined;
  const key = apiKeyOf(body.client_id, body.client_secret);
  return { client_id: body.client_id ?? API_KEY_ID.exec(key)?.[1] ?? "", client_secret: key };
}

/**
 * With a Basic header, the body sends no secret (§2.3: a client authenticates one way), and a
 * client_id there, which some clients repeat, names the same client.
 */
function refuseSecondClient(body: OAuthParameters, basic: { client_id: string }): void {
  if (body.client_secret !== undefined) {
    throw oauthError(
      "invalid_request",
      "Authenticate one way: the Authorization header or client_secret, not both.",
      "client_secret",
    );
  }
  if (body.client_id !== undefined && body.client_id !== basic.client_id) {
    throw oauthError("invalid_request", "client_id names another client than the Authorization header.", "client_id");
  }
}

/**
 * The whole `wdn_<id>_<secret>` key from a client's credentials: sent whole as the secret, or
 * split as client_id and the secret part (as a client configured with both sends them, in a
 * Basic header or in the body alike).
 */
function apiKeyOf(clientId: string | undefined, secret: string): string {
  return secret.startsWith("wdn_") || clientId === undefined ? secret : `wdn_${clientId}_${secret}`;
}

/** Token endpoint, JWKS, and the caller's own identity and sessions. */
/**
 * A password grant counts against its account (tenant and username, whether or not there is such
 * a user: refusing only real ones would tell which exist), from every address together, before
 * any password is hashed: spreading guesses over many addresses no longer multiplies them.
 */
async function throttleAccount(limiter: RateLimiter | undefined, tenant: string, username: string): Promise<void> {
  if (!limiter) return;
  // Normalised as the user lookup does (trimmed, lower case): " bob@x" is bob@x's bucket too.
  const decision = await limiter.decide("account", tenant.trim(), `user:${username.trim().toLowerCase()}`);
  if (decision.allowed) return;
  const retryAfter = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
  throw new HttpProblem(
    429,
    "rate-limited",
    `Too many sign-in attempts for this account: the limit is ${decision.limit} per minute. Retry in ${retryAfter} s.`,
    {
      // The account's quota, not the address's (which the limiter hook set, and which has some left).
      headers: {
        "retry-after": String(retryAfter),
        "ratelimit-policy": `"account";q=${decision.limit};w=60`,
        ratelimit: `"account";r=0;t=${retryAfter}`,
        "x-ratelimit-limit": String(decision.limit),
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(Math.ceil((Date.now() + decision.retryAfterMs) / 1000)),
      },
    },
  );
}

export const authModule = (security: Security, limiter?: RateLimiter) => {
  // The hottest authenticated GET: served by the lean path in front of Elysia (src/plugins/lean-routes.ts).
  const whoAmI = lean(ANY_ROLE, publicIdentity);
  return new Elysia({ name: "auth-routes", tags: ["auth"] })
    .use(authPlugin(security.tokens, security.audit))
    .get(
      "/.well-known/jwks.json",
      ({ set }) => {
        set.headers["cache-control"] = JWKS_CACHE;
        return security.keyRing.jwks();
      },
      {
        response: jwks,
        detail: {
          summary: "Public signing keys (current, next, and previous ones still verifying)",
          ...responseHeaders(200, {
            "Cache-Control": {
              description: "cacheable for five minutes",
              schema: { type: "string", enum: [JWKS_CACHE] },
            },
          }),
        },
      },
    )
    .post(
      "/v1/auth/token",
      async ({ body: sent, request, set, server }) => {
        Object.assign(set.headers, OAUTH_NO_STORE);
        const body = parameters(sent, request);
        const meta = requestMetaOf(request, set, server);
        // We issue no scopes: asking for one is refused rather than silently narrowed (§5.1 would
        // then have us name the scope we did issue).
        if (body.scope) throw oauthError("invalid_scope", "This server issues no scopes; send no scope.", "scope");
        const grant = required(body, "grant_type");
        const sentBasic = BASIC.test(request.headers.get("authorization") ?? "");
        // Client authentication belongs to the client_credentials grant alone (§2.3: a client
        // authenticates one way, and a server refuses a method it does not support for a request).
        // The refresh grant takes it too (RFC 6749 §6: a client that authenticated authenticates again).
        if (sentBasic && grant !== "client_credentials" && grant !== "refresh_token") {
          throw asBasicChallenge(
            oauthError(
              "invalid_client",
              `The ${grant} grant takes no client authentication; send no Authorization header.`,
            ),
          );
        }
        switch (grant) {
          case "password": {
            const tenant = required(body, "tenant");
            const username = required(body, "username");
            const password = required(body, "password");
            await throttleAccount(limiter, tenant, username);
            return security.auth.passwordGrant({ tenant, username, password }, meta);
          }
          case "client_credentials": {
            const challenge = (error: unknown) => {
              throw sentBasic ? asBasicChallenge(error) : error;
            };
            const basic = basicClient(request, body);
            return security.auth
              .clientCredentialsGrant(
                basic ?? {
                  client_secret: apiKeyOf(body.client_id, required(body, "client_secret")),
                  client_id: body.client_id,
                },
                meta,
              )
              .catch(challenge);
          }
          case "refresh_token": {
            const refreshToken = required(body, "refresh_token");
            if (!sentBasic) {
              // Credentials in the body are checked as Basic ones are, never dropped unread.
              const client = bodyCredentials(body);
              return security.auth.refreshGrant({ refresh_token: refreshToken, client }, meta);
            }
            const client = basicClient(request, body);
            try {
              return await security.auth.refreshGrant({ refresh_token: refreshToken, client }, meta);
            } catch (error) {
              throw asBasicChallenge(error);
            }
          }
          default:
            throw oauthError(
              "unsupported_grant_type",
              `grant_type must be password, client_credentials or refresh_token.`,
            );
        }
      },
      {
        body: tokenRequest,
        parse: JSON_OR_FORM,
        response: tokenResponse,
        detail: {
          summary: "Issue tokens (OAuth 2.0 token endpoint)",
          // No credentials, or an API key in HTTP Basic (client_secret_basic): either will do.
          security: [{}, { basic: [] }],
          description:
            "JSON or form-encoded. `password`: tenant, username (email), password. `client_credentials`: client_secret = the API key (or HTTP Basic: the key id and its secret, or no user name and the whole key). `refresh_token`: refresh_token (rotated on every use; presenting a used one revokes the session, unless it is the latest retried within REFRESH_TOKEN_REUSE_GRACE_SECONDS). Failures are 400 with an OAuth `error` code. A password grant also counts against its account (tenant and username) from every address: past RATE_LIMIT_ACCOUNT_PER_MINUTE it is a 429 whose RateLimit headers name the `account` policy.",
        },
      },
    )
    .post(
      "/v1/auth/revoke",
      async ({ body: sent, request, set, server }) => {
        const body = parameters(sent, request);
        await security.sessions.revokeToken(required(body, "token"), requestMetaOf(request, set, server));
        return {};
      },
      {
        body: revokeRequest,
        parse: JSON_OR_FORM,
        response: t.Object({}),
        detail: {
          summary: "Revoke a token (RFC 7009)",
          description:
            "Access or refresh token; a refresh token revokes its whole session. 200 even for unknown tokens.",
        },
      },
    )
    .get("/v1/auth/me", whoAmI.handler, {
      auth: whoAmI.roles,
      response: me,
      detail: { summary: "The caller's identity" },
    })
    .post(
      "/v1/auth/logout",
      async ({ principal, request, set, server }) => {
        await security.sessions.logout(principal, requestMetaOf(request, set, server));
        set.status = 204;
      },
      {
        auth: ANY_ROLE,
        detail: {
          summary: "Revoke the caller's session (access and refresh)",
          responses: { 204: { description: "The session is revoked" } },
        },
      },
    )
    .get(
      "/v1/auth/sessions",
      ({ principal, query }) => {
        const limit = query.limit ?? 50;
        // Signed in with an API key: that key's sessions only (see deleteOwnSession).
        const rows = security.sessions.liveSessions(principal.tid, principal.sub, {
          limit: limit + 1,
          before: query.cursor,
          apiKeyId: principal.client_id,
        });
        const { page, next_cursor } = pageOf(rows, limit);
        return { sessions: page.map((s) => publicSession(s, principal.sid)), next_cursor };
      },
      {
        auth: ANY_ROLE,
        query: sessionPage,
        response: sessionList,
        detail: {
          summary: "The caller's live sessions, newest first",
          description: "Signed in with an API key, the caller sees (and may end) that key's sessions only.",
        },
      },
    )
    .delete(
      "/v1/auth/sessions/:id",
      async ({ principal, params, request, set, server }) => {
        await security.sessions.deleteOwnSession(principal, params.id, requestMetaOf(request, set, server));
        set.status = 204;
      },
      {
        auth: ANY_ROLE,
        params: t.Object({ id: t.String({ maxLength: 64 }) }),
        detail: {
          summary: "End one of the caller's sessions",
          responses: { 204: { description: "The session is ended" } },
        },
      },
    );
};
