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

/**
 * The first field of `value` its object schema does not name, as a dotted path (`recipients.user_id`),
 * at any depth; an array's items by index. Objects of free keys (a t.Record, `additionalProperties`
 * allowed) and schemas of any value (t.Unknown) are not looked into.
 */
export function unknownFieldOf(of: object | undefined, value: unknown, path = ""): string | undefined {
  if (of === undefined) return undefined;
  const schema = of as Schema;
  if (schema.type === "object" && schema.properties && isRecord(value)) {
    const open =
      (schema.additionalProperties !== undefined && schema.additionalProperties !== false) || schema.patternProperties;
    for (const key in value) {
      const property = schema.properties[key];
      if (property === undefined) {
        if (open) continue;
        return `${path}${key}`;
      }
      const inner = unknownFieldOf(property, value[key], `${path}${key}.`);
      if (inner !== undefined) return inner;
    }
    return undefined;
  }
  if (schema.type === "array" && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = unknownFieldOf(schema.items, value[i], `${path}${i}.`);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

function notAnObject(): HttpProblem {
  const message = "Expected object";
  return new HttpProblem(422, "validation", `Invalid body. The request body as a whole: ${message}.`, {
    errors: [{ in: "body", field: "", message }],
  });
}

/** The 422 for a field the body's schema does not name, listing those it does at that level. */
export function refuseUnknownField(schema: object, body: unknown): void {
  const field = unknownFieldOf(schema, body);
  if (field === undefined) return;
  let level: Schema | undefined = schema as Schema;
  for (const step of field.split(".").slice(0, -1))
    level = /^\d+$/.test(step) ? level?.items : level?.properties?.[step];
  const names = Object.keys(level?.properties ?? {});
  throw invalidField(field, `Not a field of this body; it takes ${names.join(", ")}.`);
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
      if (!schema) return;
      // An optional body is checked only when it is an object: `1`, `[…]` or a JSON string
      // would pass for "no body" and take every default (a rotation's 24 hours among them).
      if (schema.type === "object" && !isRecord(raw)) throw notAnObject();
      refuseUnknownField(schema, raw);
    });
};
