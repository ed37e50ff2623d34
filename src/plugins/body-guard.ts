import { Elysia } from "elysia";
import { bodyNotAnObject, HttpProblem, invalidField } from "../lib/problem";
import { findMisfit, findUnknown, isRecord, type Schema } from "../lib/unknown-field";
import { OAUTH_PATHS } from "./errors";
import { bodyWasBlank, bodyWasForm, parsedBodyOf } from "./request-guards";
import { type RouteEntry, routeIndex } from "./route-index";

/**
 * The 422 for a body that is no object where the schema wants one (an optional body would pass
 * for "no body" and take every default: a rotation's 24 hours among them), or a field of it that
 * is no object where the schema takes one, for a field the
 * schema does not name, listing those it takes there, and, in JSON, for a number sent as a string.
 */
export function refuseUnknownField(schema: object, body: unknown, request: Request): void {
  if ((schema as Schema).type === "object" && !isRecord(body)) throw bodyNotAnObject();
  const unknown = findUnknown(schema as Schema, body, "");
  if (unknown) throw invalidField(unknown.field, `Not a field of this body; it takes ${unknown.takes.join(", ")}.`);
  const misfit = findMisfit(schema as Schema, body, "", !bodyWasForm(request));
  if (misfit !== undefined) throw invalidField(misfit.field, misfit.expected);
}

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
  return new Elysia({ name: "body-guard" }).onBeforeHandle({ as: "global" }, ({ request, route }) => {
    // The body as our parser read it, before the normalizer dropped what the schema does not name.
    const schema = schemaFor(request.method, route);
    if (!schema) return;
    const raw = parsedBodyOf(request);
    if (raw !== undefined) refuseUnknownField(schema, raw, request);
    else if (bodyWasBlank(request)) {
      throw new HttpProblem(400, "malformed-json", "The body is not valid JSON: it holds only whitespace.");
    }
  });
};
