import { Elysia } from "elysia";
import { HttpProblem, invalidField } from "../lib/problem";
import { OAUTH_PATHS } from "./errors";
import { type RouteEntry, routeIndex } from "./route-index";

type Schema = {
  type?: unknown;
  properties?: Record<string, Schema>;
  additionalProperties?: unknown;
  patternProperties?: unknown;
  items?: Schema;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** A field the schema does not name, and the fields it takes where that one was sent. */
interface Unknown {
  readonly field: string;
  readonly takes: readonly string[];
}

function findUnknown(schema: Schema | undefined, value: unknown, path: string): Unknown | undefined {
  if (schema === undefined) return undefined;
  if (schema.type === "object" && schema.properties && isRecord(value)) {
    const properties = schema.properties;
    const open =
      (schema.additionalProperties !== undefined && schema.additionalProperties !== false) || schema.patternProperties;
    for (const key in value) {
      // Own keys only: `constructor` or `toString` would otherwise find Object.prototype's.
      const property = Object.hasOwn(properties, key) ? properties[key] : undefined;
      if (property === undefined) {
        if (open) continue;
        return { field: `${path}${key}`, takes: Object.keys(properties) };
      }
      const inner = findUnknown(property, value[key], `${path}${key}.`);
      if (inner !== undefined) return inner;
    }
    return undefined;
  }
  if (schema.type === "array" && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = findUnknown(schema.items, value[i], `${path}${i}.`);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

/**
 * The first field of `value` its object schema does not name, as a dotted path (`recipients.user_id`),
 * at any depth; an array's items by index. Objects of free keys (a t.Record, `additionalProperties`
 * allowed) and schemas of any value (t.Unknown) are not looked into.
 */
export function unknownFieldOf(schema: object | undefined, value: unknown): string | undefined {
  return findUnknown(schema as Schema | undefined, value, "")?.field;
}

function notAnObject(): HttpProblem {
  const message = "Expected object";
  return new HttpProblem(422, "validation", `Invalid body. The request body as a whole: ${message}.`, {
    errors: [{ in: "body", field: "", message }],
  });
}

/**
 * The 422 for a body that is no object where the schema wants one (an optional body would pass
 * for "no body" and take every default: a rotation's 24 hours among them), or for a field the
 * schema does not name, listing those it takes there.
 */
export function refuseUnknownField(schema: object, body: unknown): void {
  if ((schema as Schema).type === "object" && !isRecord(body)) throw notAnObject();
  const unknown = findUnknown(schema as Schema, body, "");
  if (unknown) throw invalidField(unknown.field, `Not a field of this body; it takes ${unknown.takes.join(", ")}.`);
}

const RAW_BODY = Symbol("warden.rawBody");
type Stashed = Request & { [RAW_BODY]?: unknown };

/**
 * A body field the route does not name is a 422 naming it, as a query parameter is: a misspelt
 * field would otherwise be dropped by Elysia's normalizer, and the route answer as though it
 * were not sent (a mistyped `event_types` subscribes an endpoint to every event; a mistyped
 * overlap keeps a leaked secret signing). The body is read as parsed, before the normalizer
 * drops what the schema does not name, and checked after the caller is authorised and the body
 * validated (401, 403 and a wrong type first). The OAuth endpoints ignore what they do not
 * know, as RFC 6749 §3.1 has them.
 */
export const bodyGuard = (routes: () => readonly RouteEntry[]) => {
  const schemaFor = routeIndex(routes, (route) => {
    const body = (route.hooks as { body?: Schema } | undefined)?.body;
    return body && !OAUTH_PATHS.has(route.path) ? body : undefined;
  });
  return new Elysia({ name: "body-guard" })
    .onTransform({ as: "global" }, ({ request, body }) => {
      if (body !== undefined) (request as Stashed)[RAW_BODY] = body;
    })
    .onBeforeHandle({ as: "global" }, ({ request, route }) => {
      const raw = (request as Stashed)[RAW_BODY];
      if (raw === undefined) return;
      const schema = schemaFor(request.method, route);
      if (schema) refuseUnknownField(schema, raw);
    });
};
