import { ValueErrorType } from "@sinclair/typebox/errors";
import { Elysia, ValidationError } from "elysia";
import { EXPECTED, IDENTIFIER_TEXT, NOT_IDENTIFIER_TEXT, NOT_PLAIN_TEXT, PLAIN_TEXT } from "../lib/formats";
import type { Logger } from "../lib/logger";
import { OAUTH_NO_STORE, oauthDescription } from "../lib/oauth";
import { bodyNotAnObject, type FieldError, HttpProblem } from "../lib/problem";
import { decodes, pathOf } from "../lib/request-target";
import { findUnknown, isRecord, type Schema } from "../lib/unknown-field";
import { malformedQuery } from "./query-guard";
import { requestIdOf } from "./request-context";
import { parsedBodyOf } from "./request-guards";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** Which methods serve a path; answers 405 vs 404 for a request that matched no route. */
export interface MethodIndex {
  methodsFor(path: string): string[];
}

/** Turns every failure into one RFC 9457 problem+json; unknown errors become a generic 500. */
export const errors = (options: { log: Logger; methods: MethodIndex }) =>
  new Elysia({ name: "errors" }).onError({ as: "global" }, ({ code, error, set, request, path }) => {
    const problem = toProblem(code, error, request, path, options.methods);
    if (!OAUTH_PATHS.has(path)) return writeProblem(problem, error, options.log, set, path);
    return writeProblem(asOAuth(problem), error, options.log, set, path, OAUTH_CONTENT_TYPE);
  });

/**
 * Endpoints whose clients read OAuth's error format (RFC 6749 §5.2, RFC 7009 §2.2.1): a request
 * they cannot use is a 400 with `error: invalid_request`, so an unreadable body or a field of the
 * wrong type answers as a missing one does (the problem's `errors` still name the field).
 */
export const OAUTH_PATHS: ReadonlySet<string> = new Set(["/v1/auth/token", "/v1/auth/revoke"]);
/**
 * RFC 6749 §5.2 and RFC 7009 §2.2.1 send errors as `application/json`, and OAuth clients check
 * (oauth4webapi refuses anything else, so the caller never sees `invalid_grant`). The body is
 * the same problem, with OAuth's `error` and `error_description` in it.
 */
export const OAUTH_CONTENT_TYPE = "application/json";

function asOAuth(problem: HttpProblem): HttpProblem {
  // A body too large or of a type not taken keeps its HTTP status, and says so in OAuth's words too.
  if (problem.status === 413 || problem.status === 415) {
    return new HttpProblem(problem.status, problem.slug, problem.detail, {
      ...problem.options,
      headers: { ...problem.headers, ...OAUTH_NO_STORE },
      extensions: { error: "invalid_request", error_description: oauthDescription(problem.detail) },
    });
  }
  const unreadable = ["malformed-body", "malformed-json", "incomplete-body", "missing-body"].includes(problem.slug);
  if (problem.status !== 422 && !unreadable) return problem;
  return new HttpProblem(400, "invalid-request", problem.detail, {
    errors: problem.options.errors,
    headers: { ...problem.headers, ...OAUTH_NO_STORE },
    extensions: { error: "invalid_request", error_description: oauthDescription(problem.detail) },
  });
}

type Mutable = { status?: number | string; headers: Record<string, unknown> };

/**
 * Sets the problem's status and headers on `set` and answers its body; an unexpected error (a 5xx
 * no code chose) is logged with its stack. Shared by the errors hook and the lean path (src/plugins/lean-routes.ts).
 */
export function writeProblem(
  problem: HttpProblem,
  error: unknown,
  log: Logger,
  set: Mutable,
  path: string,
  contentType = PROBLEM_CONTENT_TYPE,
): string {
  // A 5xx the code chose (a 503 while Redis is away) was logged where it was decided, without a stack.
  if (problem.status >= 500 && !(error instanceof HttpProblem)) {
    log.error({ err: error, request_id: requestIdOf(set), route: path }, "unhandled error");
  }
  set.status = problem.status;
  Object.assign(set.headers, problem.headers, { "content-type": contentType });
  return JSON.stringify(problem.toBody(requestIdOf(set)));
}

/** A failure outside Elysia's hooks as a problem: an HttpProblem, a body ValidationError (given its request), else a 500. */
export function problemOf(error: unknown, request?: Request): HttpProblem {
  if (error instanceof ValidationError && request) return validationProblem(error, request);
  return toProblem(undefined, error, undefined, "", undefined);
}

function toProblem(
  code: unknown,
  error: unknown,
  request: Request | undefined,
  path: string,
  methods: MethodIndex | undefined,
): HttpProblem {
  if (error instanceof HttpProblem) return error;
  // Errors thrown by our body parser arrive wrapped in Elysia's ParseError.
  if (error instanceof Error && error.cause instanceof HttpProblem) return error.cause;
  if (request === undefined || methods === undefined) return internalError();
  if (error instanceof ValidationError) return validationProblem(error, request);
  switch (code) {
    case "PARSE":
      return unparsable(request);
    case "NOT_FOUND":
      return notFoundOrNotAllowed(request.method, path, methods);
    case "INVALID_COOKIE_SIGNATURE":
      return new HttpProblem(400, "bad-request", "A cookie signature is invalid.");
    default:
      return internalError();
  }
}

/**
 * Elysia's PARSE: a body its route's parsers could not read (also what the lean path answers for
 * an empty one). A request that sent no body at all is told so, not that it was unreadable.
 */
export function unparsable(request: Request): HttpProblem {
  const length = request.headers.get("content-length");
  const sentNone = length === null ? request.body === null : length.trim() === "0";
  if (sentNone) {
    return new HttpProblem(400, "missing-body", "This request needs a body, JSON or form-encoded; none was sent.");
  }
  return new HttpProblem(400, "malformed-body", "The request body could not be parsed.");
}

function internalError(): HttpProblem {
  return new HttpProblem(500, "internal", "An unexpected error occurred. Quote the request id when reporting it.");
}

const OPENAPI_IN: Record<string, string> = { params: "path", headers: "header" };

function validationProblem(error: ValidationError, request: Request): HttpProblem {
  // Elysia leaves a parameter it cannot decode (`%FF`) out, and its check then reads "Expected string".
  if (error.type === "params" && !decodes(pathOf(request.url))) {
    return new HttpProblem(400, "malformed-path", "The path is not valid percent-encoded UTF-8.");
  }
  // Likewise a query parameter: `?limit=%FF` reaches the check as U+FFFD, "Expected an integer".
  // A coerced value that failed ("property") is the query's only when the query holds it: a body
  // field's failure on a route that ignores its query is the body's.
  if (error.type === "query" || (error.type === "property" && queryFieldHolding(request, error.value))) {
    const malformed = malformedQuery(request.url);
    if (malformed) return malformed;
  }
  // Every body schema is an object: `[]` or `1` is not one, whatever field the validator met first.
  if (error.type === "body") {
    const raw = parsedBodyOf(request);
    if (raw !== undefined && !isRecord(raw)) return bodyNotAnObject();
  }
  // Elysia's coercion of a number sent as a string (a query, a form, a JSON string) fails as a
  // nameless "property" holding the coerced value: find where it came from by that value.
  let part: string = error.type;
  let fallbackField = "";
  if (error.type === "property") {
    fallbackField = queryFieldHolding(request, error.value);
    part = "query";
    if (!fallbackField) {
      const bodyField = bodyFieldHolding(parsedBodyOf(request), error.value);
      if (bodyField !== undefined) [part, fallbackField] = ["body", bodyField];
    }
  }
  // Where the field is, in OpenAPI's words (`path`, `query`, `header`, and `body`), not Elysia's.
  const where = OPENAPI_IN[part] ?? part;
  // A missing field is reported twice, "Expected required property" and what it should have
  // been ("Expected object"): the second says more.
  const required = (issue: unknown) => kindOf(issue) === ValueErrorType.ObjectRequiredProperty;
  const typed = new Set(error.all.flatMap((issue) => ("path" in issue && !required(issue) ? [issue.path] : [])));
  const issues = error.all.filter((issue) => !("path" in issue) || !required(issue) || !typed.has(issue.path));
  const fields: FieldError[] = issues.flatMap((issue) => {
    const field =
      "path" in issue && typeof issue.path === "string" && issue.path ? pointerToField(issue.path) : fallbackField;
    const schema = (issue as { schema?: { minProperties?: number; properties?: object } }).schema;
    // An object that needs at least one of its fields (a PATCH): the object, naming what it takes.
    if (schema?.minProperties !== undefined && schema.properties && "value" in issue && isEmptyObject(issue.value)) {
      // Emptied by the normalizer: what was sent is a field the body does not name (`descripton`).
      const sent =
        part === "body" && field === "" ? findUnknown(schema as Schema, parsedBodyOf(request), "") : undefined;
      if (sent)
        return [
          { in: where, field: sent.field, message: `Not a field of this body; it takes ${sent.takes.join(", ")}.` },
        ];
      return [{ in: where, field, message: `Send at least one of ${Object.keys(schema.properties).join(", ")}` }];
    }
    const expected = describeExpected(schema, issue.message, kindOf(issue));
    // TypeBox reports a missing field as a value of the wrong type ("Expected string").
    const missing = "value" in issue && issue.value === undefined && field !== "";
    return [{ in: where, field, message: missing ? `Required; ${lowerFirst(expected)}` : expected }];
  });
  // The root has no field name; "body: …" would read as a field called body.
  const named = fields.map((f) =>
    f.field ? `${f.field}: ${f.message}` : `The request ${part} as a whole: ${f.message}`,
  );
  const joined = [...new Set(named)].join("; ");
  // A message that is a sentence of its own ("…; it takes url, description.") brings its stop.
  const detail = named.length > 0 ? `Invalid ${part}. ${joined}${joined.endsWith(".") ? "" : "."}` : `Invalid ${part}.`;
  return new HttpProblem(422, "validation", detail, { errors: dedupe(fields) });
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}

function queryFieldHolding(request: Request, value: unknown): string {
  const query = new URL(request.url).searchParams;
  for (const [key, raw] of query) if (raw === String(value)) return key;
  // A coerced number prints differently from what was sent ("99999999999999999999" → "1e+20",
  // " " → 0; an empty parameter never gets here, it counts as not given).
  if (typeof value === "number") for (const [key, raw] of query) if (Number(raw) === value) return key;
  return "";
}

/** The top-level body field that sent `value` as a string, e.g. a form's `rating=7` decoded to 7. */
function bodyFieldHolding(body: unknown, value: unknown): string | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  for (const [key, raw] of Object.entries(body)) {
    if (typeof raw === "string" && raw.trim() !== "" && (raw === String(value) || Number(raw) === value)) return key;
  }
  return undefined;
}

/** TypeBox's ValueErrorType of a validation issue. */
function kindOf(issue: unknown): number | undefined {
  return (issue as { type?: number }).type;
}

/** TypeBox says "Expected union value" for enums; name the values a caller may send instead. */
function describeExpected(schema: unknown, message: string, type: number | undefined): string {
  type Option = { const?: unknown; type?: string; format?: string; minimum?: number; maximum?: number };
  const node = schema as (Option & { anyOf?: Option[]; enum?: unknown[] }) | undefined;
  const options = node?.enum ?? node?.anyOf?.map((option) => option.const);
  if (options?.length && options.every((option) => typeof option === "string"))
    return `Expected one of ${options.join(", ")}`;
  // The union of Elysia's t.Integer, or the integer its decoder checks a coerced string against.
  const integer = node?.type === "integer" ? node : node?.anyOf?.find((option) => option.type === "integer");
  if (integer) return `Expected an integer${bounds(integer.minimum, integer.maximum)}`;
  if (node?.anyOf?.some((option) => option.type === "boolean")) return "Expected true or false";
  if (node?.format === "date-time") return "Expected an RFC 3339 date-time, such as 2026-12-01T09:30:00Z";
  const own = (node as Record<string, unknown> | undefined)?.[EXPECTED];
  if (type === ValueErrorType.StringPattern && typeof own === "string") return own;
  // Only the format check itself: a plain-text field too long, empty or not a string says so.
  if (node?.format === PLAIN_TEXT && type === ValueErrorType.StringFormat) return NOT_PLAIN_TEXT;
  if (node?.format === IDENTIFIER_TEXT && type === ValueErrorType.StringFormat) return NOT_IDENTIFIER_TEXT;
  return message;
}

/** " from 1 to 5", " of at least 1", " of at most 200", or nothing. */
function bounds(minimum: number | undefined, maximum: number | undefined): string {
  if (minimum !== undefined && maximum !== undefined) return ` from ${minimum} to ${maximum}`;
  if (minimum !== undefined) return ` of at least ${minimum}`;
  return maximum !== undefined ? ` of at most ${maximum}` : "";
}

/** JSON pointer "/labels/team" → "labels.team". */
function pointerToField(pointer: string): string {
  return pointer
    .split("/")
    .slice(1)
    .map((segment) => segment.replace(/~1/g, "/").replace(/~0/g, "~"))
    .join(".");
}

function dedupe(fields: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return fields.filter((f) => {
    const key = `${f.in}|${f.field}|${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function notFoundOrNotAllowed(method: string, path: string, methods: MethodIndex): HttpProblem {
  const allowed = methods.methodsFor(path);
  if (allowed.length > 0 && !allowed.includes(method)) {
    return new HttpProblem(405, "method-not-allowed", `${method} is not allowed here; use ${allowed.join(", ")}.`, {
      headers: { allow: allowed.join(", ") },
    });
  }
  return new HttpProblem(404, "not-found", "No resource matches this path.");
}

/** Built from the app's route table once every route is registered. */
export function routeMethodIndex(routes: readonly { method: string; path: string }[]): MethodIndex {
  const patterns = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  for (const route of routes) {
    if (route.method === "ALL" || route.method === "WS") continue;
    let entry = patterns.get(route.path);
    if (!entry) {
      entry = { pattern: templateToRegExp(route.path), methods: new Set() };
      patterns.set(route.path, entry);
    }
    entry.methods.add(route.method);
    if (route.method === "GET") entry.methods.add("HEAD");
  }
  return {
    methodsFor(path) {
      const allowed = new Set<string>();
      for (const { pattern, methods } of patterns.values()) {
        if (pattern.test(path)) for (const m of methods) allowed.add(m);
      }
      return [...allowed].sort();
    },
  };
}

function templateToRegExp(template: string): RegExp {
  const source = template
    .split("/")
    .map((segment) => {
      if (segment === "*") return ".*";
      if (segment.startsWith(":")) return "[^/]+";
      return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return new RegExp(`^${source}/?$`);
}
