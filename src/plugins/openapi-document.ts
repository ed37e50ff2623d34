/**
 * What the OpenAPI document says beyond what the generator derives from the routes: the problem
 * responses every route can give, the headers responses carry, closed and flat request bodies,
 * identifier operationIds, and descriptions where Swagger UI shows them.
 */
import { OptionalKind } from "@sinclair/typebox";
import { t } from "elysia";
import { DOCUMENTED_AS, RESPONSE_HEADERS } from "../lib/openapi-shape";
import { OAUTH_CONTENT_TYPE, OAUTH_PATHS } from "./errors";
import { routeClassOf } from "./rate-limit";
import type { RouteEntry } from "./route-index";

export const PROBLEM_SCHEMA = t.Object(
  {
    type: t.String({ examples: ["urn:warden:problem:validation"] }),
    title: t.String(),
    status: t.Integer(),
    detail: t.String(),
    request_id: t.Optional(t.String()),
    errors: t.Optional(
      t.Array(
        t.Object({
          // No default: t.UnionEnum would otherwise document the first value as one.
          in: t.UnionEnum(["body", "query", "path", "header"], {
            default: undefined,
            description: "where the field is, as OpenAPI names it",
          }),
          field: t.String(),
          message: t.String(),
        }),
      ),
    ),
    error: t.Optional(
      t.String({ description: "On the token and revoke endpoints: the OAuth 2.0 error code (RFC 6749 §5.2)." }),
    ),
    error_description: t.Optional(t.String({ description: "On the token and revoke endpoints: the same as detail." })),
  },
  { description: "RFC 9457 problem details; validation failures list each offending field." },
);

const PROBLEM_RESPONSE = {
  description: "problem+json",
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
};
/** The OAuth endpoints answer the same problem as `application/json`, as RFC 6749 §5.2 has it. */
const OAUTH_PROBLEM_RESPONSE = {
  description:
    "the problem as application/json; OAuth's errors (400, 401, 413, 415) also carry `error` and `error_description`, and a 405, 429 or 431 is the problem alone (OAuth defines no code for them)",
  content: { [OAUTH_CONTENT_TYPE]: { schema: { $ref: "#/components/schemas/Problem" } } },
};

type Operation = {
  operationId?: string;
  responses?: Record<string, unknown>;
  security?: Record<string, unknown>[];
  parameters?: unknown[];
  [RESPONSE_HEADERS]?: Record<string, Record<string, unknown>>;
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Record<string, unknown> }> };
};

const header = (description: string, type = "string") => ({ description, schema: { type } });
type ProblemResponse = { description: string; content: Record<string, unknown> };
const problemWith = (base: ProblemResponse, description: string, headers: Record<string, unknown> = {}) => ({
  ...base,
  description,
  headers,
});
const UNAUTHORIZED = problemWith(
  PROBLEM_RESPONSE,
  "No token, or one that does not verify, has expired or was revoked",
  {
    "WWW-Authenticate": header('Bearer realm="warden", and error="invalid_token" with why when a token was sent'),
  },
);
const FORBIDDEN = problemWith(PROBLEM_RESPONSE, "A role the route does not allow, or an X-Client-ID of another tenant");
const rateLimited = (base: ProblemResponse) =>
  problemWith(base, "Rate limited: try again after Retry-After", {
    "Retry-After": header("seconds until a request is allowed", "integer"),
  });
/** A failed client_secret_basic is a 401 with a Basic challenge (RFC 6749 §5.2), not the Bearer one. */
const basicRefused = (base: ProblemResponse) =>
  problemWith(base, "invalid_client: the HTTP Basic client credentials do not verify", {
    "WWW-Authenticate": header('Basic realm="warden"'),
  });
const CLIENT_ID_PARAMETER = {
  name: "X-Client-ID",
  in: "header",
  required: false,
  schema: { type: "string" },
  description: "The tenant the caller means to act in; a token of another tenant is then a 403.",
};

/**
 * Every operation can fail with a problem+json; the generator only knows the success answers.
 * Those a client acts on by status are spelt out: 401 (with its challenge) and 403 where a token
 * is needed, 401 with a Basic challenge where HTTP Basic is taken, 429 (with when to retry) on
 * every rate-limited route.
 */
function withProblems(spec: { paths?: Record<string, Record<string, Operation>> }): void {
  for (const [path, operations] of Object.entries(spec.paths ?? {})) {
    const response = OAUTH_PATHS.has(path) ? OAUTH_PROBLEM_RESPONSE : PROBLEM_RESPONSE;
    for (const operation of Object.values(operations)) {
      operation.responses ??= {};
      // Said, not implied: a route that names no scheme takes no credentials (health, JWKS, revoke).
      operation.security ??= [];
      if (operation.security?.some((requirement) => "bearer" in requirement)) {
        operation.responses["401"] ??= UNAUTHORIZED;
        operation.responses["403"] ??= FORBIDDEN;
        // The generator's document is cached and these passes run on every fetch: add it once.
        if (!operation.parameters?.includes(CLIENT_ID_PARAMETER)) {
          operation.parameters = [...(operation.parameters ?? []), CLIENT_ID_PARAMETER];
        }
      }
      if (operation.security?.some((requirement) => "basic" in requirement)) {
        operation.responses["401"] ??= basicRefused(response);
      }
      if (routeClassOf(path) !== undefined) operation.responses["429"] ??= rateLimited(response);
      operation.responses["4XX"] ??= response;
      operation.responses["5XX"] ??= response;
    }
  }
}

const REQUEST_ID = {
  "X-Request-ID": header(
    "the request's X-Request-ID when it is 1-128 characters of [A-Za-z0-9._-], else a generated UUID; problems and log lines quote it",
  ),
};
const RATE_LIMIT = {
  RateLimit: header(
    'the caller\'s quota now, e.g. "api";r=599;t=1: requests left, and seconds until the quota is full again (refused: until the next request is allowed)',
  ),
  "RateLimit-Policy": header(
    'the quota and its window, e.g. "api";q=600;w=60 (none of these headers when the server runs with RATE_LIMIT_ENABLED=false)',
  ),
  "X-RateLimit-Limit": header("requests a minute", "integer"),
  "X-RateLimit-Remaining": header("requests left now", "integer"),
  "X-RateLimit-Reset": header("Unix time in seconds when the quota is full again", "integer"),
};
// Refused before the limiter runs: by the guards (src/app.ts has the order), or with no route to limit.
const BEFORE_THE_LIMITER = " Not on a 405, 413, 415 or 431, nor on a 400 for a body that could not be read.";
const RATE_LIMIT_ON_RANGES = Object.fromEntries(
  Object.entries(RATE_LIMIT).map(([name, value]) => [
    name,
    { ...value, description: `${value.description}.${BEFORE_THE_LIMITER}` },
  ]),
);

/**
 * Headers sent on every response: the request id everywhere, and the limiter's on every route it
 * limits (the answers' own, a 429's Retry-After, stay first). Each response gets its own copy, as
 * the problem responses are shared between operations.
 */
function withCommonHeaders(spec: { paths?: Record<string, Record<string, Operation>> }): void {
  for (const [path, operations] of Object.entries(spec.paths ?? {})) {
    const limited = routeClassOf(path) !== undefined;
    for (const operation of Object.values(operations)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const headers = { ...(response as { headers?: Record<string, unknown> }).headers };
        const range = status.endsWith("XX");
        const added = { ...REQUEST_ID, ...(limited ? (range ? RATE_LIMIT_ON_RANGES : RATE_LIMIT) : {}) };
        for (const [name, value] of Object.entries(added)) headers[name] ??= value;
        (operation.responses as Record<string, unknown>)[status] = { ...(response as object), headers };
      }
    }
  }
}

/**
 * A body field the route does not name is a 422 (src/plugins/body-guard.ts), at any depth: every
 * object of a body says `additionalProperties: false`, whether or not its schema was written
 * with it (free-form parts, a `t.Record` or data documented as open, stay as they are). Not the
 * OAuth endpoints: RFC 6749 has clients send parameters a server may not know, and servers
 * ignore them. A form carries flat strings only: its schema leaves out the fields that are
 * arrays or objects, which need JSON.
 */
function withClosedBodies(spec: { paths?: Record<string, Record<string, Operation>> }): void {
  for (const [path, operations] of Object.entries(spec.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
        const schema = media.schema as BodySchema | undefined;
        if (!schema) continue;
        if (OAUTH_PATHS.has(path)) {
          if (schema.additionalProperties === false) delete schema.additionalProperties;
          continue;
        }
        close(schema);
        if (type === "application/x-www-form-urlencoded") media.schema = flatOnly(schema);
      }
    }
  }
}

type BodySchema = {
  type?: unknown;
  properties?: Record<string, BodySchema>;
  required?: string[];
  additionalProperties?: unknown;
  patternProperties?: unknown;
  items?: BodySchema;
  description?: string;
};

function close(schema: BodySchema): void {
  if (schema.type === "object" && schema.properties) {
    if (schema.additionalProperties === undefined && schema.patternProperties === undefined) {
      schema.additionalProperties = false;
    }
    for (const property of Object.values(schema.properties)) close(property);
  }
  if (schema.type === "array" && schema.items) close(schema.items);
}

/** The form's copy of a body schema (the generator hands every media type the same object). */
function flatOnly(schema: BodySchema): Record<string, unknown> {
  const nested = Object.entries(schema.properties ?? {})
    .filter(([, property]) => property.type === "array" || property.type === "object")
    .map(([name]) => name);
  if (nested.length === 0) return schema as Record<string, unknown>;
  const properties = { ...schema.properties };
  for (const name of nested) delete properties[name];
  return {
    ...schema,
    properties,
    required: schema.required?.filter((name) => !nested.includes(name)),
    description: `${schema.description ? `${schema.description} ` : ""}As a form: ${nested.join(", ")} need JSON.`,
  };
}

type SchemaNode = { [key: string]: unknown; anyOf?: SchemaNode[]; type?: string | string[]; format?: string };

/**
 * Elysia's `t.Integer` accepts an integer or a string of one (a form body or a query sends only
 * strings), and the generator writes it as `anyOf: [string (format integer, default 0), integer]`:
 * Swagger UI then offers a string with a default of 0 for a rating of 1-5. Each such union is
 * written as the integer it stands for, with its bounds and default; and a nullable type says so
 * once, the 3.1 way.
 */
function withPlainIntegers(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) withPlainIntegers(item);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const schema = node as SchemaNode;
  const [asString, asInteger] = schema.anyOf ?? [];
  // OpenAPI 3.0's keyword, which t.Nullable adds beside 3.1's `type: [..., "null"]` that says it already.
  const saysNull =
    (Array.isArray(schema.type) && schema.type.includes("null")) || schema.anyOf?.some((b) => b.type === "null");
  if (schema.nullable === true && saysNull) delete schema.nullable;
  if (
    schema.anyOf?.length === 2 &&
    asString?.type === "string" &&
    asString.format === "integer" &&
    asInteger?.type === "integer"
  ) {
    delete schema.anyOf;
    Object.assign(schema, asInteger);
  }
  for (const value of Object.values(schema)) withPlainIntegers(value);
}

/**
 * The generator writes an optional body (`t.Optional(t.Object(…))`, rotate-secret's) as a
 * required one with no schema at all: Swagger UI then cannot send it. Written from the route's
 * own schema, as JSON or a form like every other body, and not required.
 */
function withOptionalBodies(spec: { paths?: Record<string, Record<string, Operation>> }, all: readonly RouteEntry[]) {
  for (const route of all) {
    const body = (route.hooks as { body?: object } | undefined)?.body;
    if (body === undefined || !(OptionalKind in body)) continue;
    const path = route.path.replace(/:(\w+)/g, "{$1}");
    const operation = spec.paths?.[path]?.[route.method.toLowerCase()];
    if (!operation) continue;
    const schema = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
    // A form is parsed on every route (src/plugins/request-guards.ts); the form's copy is flattened later.
    const form = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
    operation.requestBody = {
      required: false,
      content: { "application/json": { schema }, "application/x-www-form-urlencoded": { schema: form } },
    };
  }
}

/** Response headers an operation's `detail` names (see `responseHeaders`), on their responses. */
function withResponseHeaders(spec: { paths?: Record<string, Record<string, Operation>> }): void {
  for (const operations of Object.values(spec.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      const byStatus = operation[RESPONSE_HEADERS];
      if (byStatus === undefined) continue;
      delete operation[RESPONSE_HEADERS];
      for (const [status, headers] of Object.entries(byStatus)) {
        const response = (operation.responses?.[status] ?? {}) as { headers?: Record<string, unknown> };
        response.headers = { ...response.headers, ...headers };
        operation.responses = { ...operation.responses, [status]: response };
      }
    }
  }
}

/**
 * The generator makes an operationId of the path as written, dots and hyphens included
 * (`get.well-knownJwks.json`, `postV1AdminApi-keys`): generated clients need identifiers.
 * Each is camel-cased across what is not a letter or digit.
 */
function withIdentifierOperationIds(spec: { paths?: Record<string, Record<string, Operation>> }): void {
  for (const operations of Object.values(spec.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      operation.operationId = operation.operationId?.replace(/[^A-Za-z0-9]+([A-Za-z0-9]?)/g, (_, next: string) =>
        next.toUpperCase(),
      );
    }
  }
}

type Parameter = { description?: string; schema?: { description?: string } };

/**
 * The generator leaves a parameter's description in its schema, where Swagger UI does not show
 * it (it shows the parameter's own): moved there.
 */
function withParameterDescriptions(spec: { paths?: Record<string, Record<string, Operation>> }): void {
  for (const operations of Object.values(spec.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const parameter of (operation.parameters ?? []) as Parameter[]) {
        if (parameter.description !== undefined || parameter.schema?.description === undefined) continue;
        // A copy: the schema may be the route's own, which its validator still reads.
        const { description, ...schema } = parameter.schema;
        parameter.description = description;
        parameter.schema = schema;
      }
    }
  }
}

/** A schema's document-only keywords (see `documentedAs`) written in its place. */
function withDocumentedShapes(node: unknown): void {
  if (node === null || typeof node !== "object") return;
  const schema = node as Record<string, unknown>;
  const shape = schema[DOCUMENTED_AS];
  if (shape !== undefined) {
    delete schema[DOCUMENTED_AS];
    Object.assign(schema, shape);
  }
  for (const value of Object.values(schema)) withDocumentedShapes(value);
}

/** Swagger UI at /swagger and the OpenAPI document at /swagger/json, from bundled assets only. */

/** Every pass over the generated document, in the order they depend on. */
export function completeDocument(spec: object, routes: readonly RouteEntry[]): void {
  withOptionalBodies(spec, routes);
  withResponseHeaders(spec);
  withProblems(spec);
  withCommonHeaders(spec);
  withIdentifierOperationIds(spec);
  // Shapes first: closing and flattening bodies read the types they document.
  withDocumentedShapes(spec);
  withPlainIntegers(spec);
  withClosedBodies(spec);
  // Last: an integer's description is in its union's branches until they are merged.
  withParameterDescriptions(spec);
}
