import { t } from "elysia";

/** The requests src/plugins/lean-routes.test.ts sends through the lean path and through Elysia. */

export const WRITTEN = t.Object(
  { name: t.String({ minLength: 1, maxLength: 100 }), count: t.Optional(t.Integer({ minimum: 0 })) },
  { additionalProperties: false },
);
export type Written = typeof WRITTEN.static;

export const ORIGIN = "https://app.example.com";
export const PER_MINUTE = 60;
export const REFILL_MS = 60_000 / PER_MINUTE;

export interface Caller {
  readonly auth: Record<string, string>;
  readonly tenant: string;
}

export interface Case {
  readonly name: string;
  readonly path: string;
  readonly method?: string;
  /** Headers; a function gets a fresh token of the named caller, so each path's first sighting is covered. */
  readonly headers?: (
    token: (who: "viewer" | "developer" | "admin") => Promise<Caller>,
  ) => Promise<Record<string, string>>;
  /** Whether the lean path answers it itself (false: it must reach Elysia). */
  readonly lean: boolean;
  readonly status: number;
  /** Requests sent first on each path (a burst), not compared one by one but counted in the deltas. */
  readonly before?: number;
  readonly limiterOnly?: boolean;
  /** A request body (sent with the case's headers, which name its type). */
  readonly body?: string;
  /** The answer carries fresh ids and times (a real write): those are compared as present, not by value. */
  readonly volatile?: boolean;
}

export const JSON_TYPE = { "content-type": "application/json" };
export const asDeveloper =
  (extra: Record<string, string> = JSON_TYPE) =>
  async (token: (w: "developer") => Promise<Caller>) => ({
    ...(await token("developer")).auth,
    ...extra,
  });

export const bearer = (who: "viewer" | "developer" | "admin") => async (token: (w: typeof who) => Promise<Caller>) =>
  (await token(who)).auth;

/** Reads: each role, each bad token, the guards and the handler's own outcomes. The writes are in lean-routes.write-cases.ts. */
export const READ_CASES: Case[] = [
  { name: "viewer", path: "/v1/auth/me", headers: bearer("viewer"), lean: true, status: 200 },
  { name: "developer", path: "/v1/auth/me", headers: bearer("developer"), lean: true, status: 200 },
  { name: "admin", path: "/v1/auth/me", headers: bearer("admin"), lean: true, status: 200 },
  { name: "unread count", path: "/v1/notifications/unread-count", headers: bearer("viewer"), lean: true, status: 200 },
  { name: "role too small", path: "/v1/test/lean-admin", headers: bearer("viewer"), lean: true, status: 403 },
  { name: "role enough", path: "/v1/test/lean-admin", headers: bearer("admin"), lean: true, status: 200 },
  { name: "no token", path: "/v1/auth/me", lean: true, status: 401 },
  {
    name: "not bearer",
    path: "/v1/auth/me",
    headers: async () => ({ authorization: "Basic Zm9vOmJhcg==" }),
    lean: true,
    status: 401,
  },
  {
    name: "malformed bearer",
    path: "/v1/auth/me",
    headers: async () => ({ authorization: "Bearer not a token" }),
    lean: true,
    status: 401,
  },
  {
    name: "garbage token",
    path: "/v1/auth/me",
    headers: async () => ({ authorization: "Bearer a.b.c" }),
    lean: true,
    status: 401,
  },
  {
    name: "wrong X-Client-ID",
    path: "/v1/auth/me",
    headers: async (token) => ({ ...(await token("admin")).auth, "x-client-id": "another-tenant" }),
    lean: true,
    status: 403,
  },
  {
    name: "right X-Client-ID",
    path: "/v1/auth/me",
    headers: async (token) => {
      const caller = await token("admin");
      return { ...caller.auth, "x-client-id": caller.tenant };
    },
    lean: true,
    status: 200,
  },
  {
    name: "X-Request-ID given",
    path: "/v1/auth/me",
    headers: async (token) => ({ ...(await token("viewer")).auth, "x-request-id": "trace-42.a_b" }),
    lean: true,
    status: 200,
  },
  {
    name: "X-Request-ID invalid",
    path: "/v1/auth/me",
    headers: async (token) => ({ ...(await token("viewer")).auth, "x-request-id": "no spaces allowed" }),
    lean: true,
    status: 200,
  },
  {
    name: "X-Request-ID on a 401",
    path: "/v1/auth/me",
    headers: async () => ({ "x-request-id": "trace-401" }),
    lean: true,
    status: 401,
  },
  {
    name: "CORS origin allowed",
    path: "/v1/auth/me",
    headers: async (token) => ({ ...(await token("viewer")).auth, origin: ORIGIN }),
    lean: true,
    status: 200,
  },
  {
    name: "CORS origin denied",
    path: "/v1/auth/me",
    headers: async (token) => ({ ...(await token("viewer")).auth, origin: "https://evil.example.com" }),
    lean: true,
    status: 200,
  },
  {
    name: "CORS origin allowed on a 401",
    path: "/v1/auth/me",
    headers: async () => ({ origin: ORIGIN }),
    lean: true,
    status: 401,
  },
  {
    name: "oversized headers",
    path: "/v1/auth/me",
    headers: async (token) => ({ ...(await token("viewer")).auth, origin: ORIGIN, "x-big": "z".repeat(9000) }),
    lean: true,
    status: 431,
  },
  {
    name: "rate limited",
    path: "/v1/auth/me",
    headers: bearer("viewer"),
    before: PER_MINUTE,
    limiterOnly: true,
    lean: true,
    status: 429,
  },
  { name: "handler's own problem", path: "/v1/test/lean-missing", headers: bearer("viewer"), lean: true, status: 404 },
  { name: "handler crash", path: "/v1/test/lean-crash", headers: bearer("viewer"), lean: true, status: 500 },
  { name: "async handler", path: "/v1/test/lean-async", headers: bearer("viewer"), lean: true, status: 200 },
];

/** Passed on to Elysia, unchanged. */
export const PASSED_ON_CASES: Case[] = [
  { name: "HEAD", method: "HEAD", path: "/v1/auth/me", headers: bearer("viewer"), lean: false, status: 200 },
  {
    name: "CORS preflight",
    method: "OPTIONS",
    path: "/v1/auth/me",
    headers: async () => ({ origin: ORIGIN, "access-control-request-method": "GET" }),
    lean: false,
    status: 204,
  },
  { name: "query string", path: "/v1/auth/me?x=1", headers: bearer("viewer"), lean: false, status: 200 },
  { name: "trailing slash", path: "/v1/auth/me/", headers: bearer("viewer"), lean: false, status: 200 },
  { name: "POST", method: "POST", path: "/v1/auth/me", headers: bearer("viewer"), lean: false, status: 405 },
  { name: "another route", path: "/v1/auth/sessions", headers: bearer("viewer"), lean: false, status: 200 },
];
