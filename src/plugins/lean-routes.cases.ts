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

export const CASES: Case[] = [
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
  // Writes: guards, parser, limiter, validation, auth, handler — each refusal in its place.
  {
    name: "POST",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: '{"name":"a","count":2}',
    lean: true,
    status: 201,
  },
  {
    name: "POST, handler sets its status",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: '{"name":"teapot"}',
    lean: true,
    status: 202,
  },
  {
    name: "POST, form body",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper({ "content-type": "application/x-www-form-urlencoded" }),
    body: "name=formed",
    lean: true,
    status: 201,
  },
  {
    name: "POST, extra field dropped",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: '{"name":"a","admin":true}',
    lean: true,
    status: 201,
  },
  {
    name: "POST, wrong type",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: '{"name":"a","count":"many"}',
    lean: true,
    status: 422,
  },
  {
    name: "POST, field missing",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: '{"count":1}',
    lean: true,
    status: 422,
  },
  {
    name: "POST, empty JSON body",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: "",
    lean: true,
    status: 400,
  },
  {
    name: "POST, JSON array",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: "[1]",
    lean: true,
    status: 422,
  },
  {
    name: "POST, no body at all",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper({}),
    lean: true,
    status: 400,
  },
  {
    name: "POST, malformed JSON",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: '{"name":',
    lean: true,
    status: 400,
  },
  {
    name: "POST, JSON nested deeper than the limit",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: `{"name":${"[".repeat(5000)}${"]".repeat(5000)}}`,
    lean: true,
    status: 422,
  },
  {
    name: "POST, gzip-encoded body",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper({ "content-encoding": "gzip" }),
    body: '{"name":"x"}',
    lean: true,
    status: 415,
  },
  {
    name: "POST, text/plain",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper({ "content-type": "text/plain" }),
    body: "name",
    lean: true,
    status: 415,
  },
  {
    name: "POST, body over the limit",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: `{"name":"${"x".repeat(1_100_000)}"}`,
    lean: true,
    status: 413,
  },
  {
    name: "POST, role too small",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: async (token) => ({ ...(await token("viewer")).auth, ...JSON_TYPE }),
    body: '{"name":"a"}',
    lean: true,
    status: 403,
  },
  {
    name: "POST, no token",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: async () => JSON_TYPE,
    body: '{"name":"a"}',
    lean: true,
    status: 401,
  },
  {
    name: "POST, no token and a bad body",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: async () => JSON_TYPE,
    body: '{"count":-1}',
    lean: true,
    status: 422,
  },
  {
    name: "POST, rate limited",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: '{"name":"a"}',
    before: PER_MINUTE,
    limiterOnly: true,
    lean: true,
    status: 429,
  },
  {
    name: "POST, handler's own problem",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: '{"name":"missing"}',
    lean: true,
    status: 404,
  },
  {
    name: "POST, handler crash",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper(),
    body: '{"name":"crash"}',
    lean: true,
    status: 500,
  },
  {
    name: "POST, async handler",
    method: "POST",
    path: "/v1/test/lean-post-async",
    headers: asDeveloper(),
    body: '{"name":"later"}',
    lean: true,
    status: 201,
  },
  {
    name: "POST, CORS origin allowed",
    method: "POST",
    path: "/v1/test/lean-post",
    headers: asDeveloper({ ...JSON_TYPE, origin: ORIGIN }),
    body: '{"name":"a"}',
    lean: true,
    status: 201,
  },
  {
    name: "feedback",
    method: "POST",
    path: "/v1/feedback",
    headers: asDeveloper(),
    body: '{"subject_type":"alert","subject_id":"a-1","verdict":"useful","rating":4}',
    lean: true,
    status: 202,
    volatile: true,
  },
  {
    name: "feedback, bad verdict",
    method: "POST",
    path: "/v1/feedback",
    headers: asDeveloper(),
    body: '{"subject_type":"alert","subject_id":"a-1","verdict":"meh"}',
    lean: true,
    status: 422,
  },
  {
    name: "notification",
    method: "POST",
    path: "/v1/notifications",
    headers: asDeveloper(),
    body: '{"recipients":{"role":"viewer"},"type":"lean.post","title":"both ways"}',
    lean: true,
    status: 201,
    volatile: true,
  },
  {
    name: "notification, Idempotency-Key too long",
    method: "POST",
    path: "/v1/notifications",
    headers: asDeveloper({ ...JSON_TYPE, "idempotency-key": "k".repeat(256) }),
    body: '{"recipients":{"role":"viewer"},"type":"lean.post","title":"both ways"}',
    lean: true,
    status: 422,
  },
  {
    name: "notification, viewer",
    method: "POST",
    path: "/v1/notifications",
    headers: async (token) => ({ ...(await token("viewer")).auth, ...JSON_TYPE }),
    body: '{"recipients":{"role":"viewer"},"type":"lean.post","title":"both ways"}',
    lean: true,
    status: 403,
  },
  {
    name: "revocation (an audited write)",
    method: "POST",
    path: "/v1/admin/revocations",
    headers: async (token) => ({ ...(await token("admin")).auth, ...JSON_TYPE }),
    body: '{"jti":"lean-revoked-jti"}',
    lean: true,
    status: 201,
  },
  {
    name: "revocation, two subjects",
    method: "POST",
    path: "/v1/admin/revocations",
    headers: async (token) => ({ ...(await token("admin")).auth, ...JSON_TYPE }),
    body: '{"jti":"a","session_id":"b"}',
    lean: true,
    status: 422,
  },
  {
    name: "revocation by a developer (denied, audited)",
    method: "POST",
    path: "/v1/admin/revocations",
    headers: asDeveloper(),
    body: '{"jti":"lean-revoked-jti"}',
    lean: true,
    status: 403,
  },
  {
    name: "POST with a query string, handler's own problem",
    method: "POST",
    path: "/v1/test/lean-post-async?x=1",
    headers: asDeveloper(),
    body: '{"name":"missing"}',
    lean: false,
    status: 404,
  },
  {
    name: "POST with a query string",
    method: "POST",
    path: "/v1/test/lean-post?x=1",
    headers: asDeveloper(),
    body: '{"name":"a"}',
    lean: false,
    status: 201,
  },
  // Passed on to Elysia, unchanged:
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
