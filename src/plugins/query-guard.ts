import { Elysia } from "elysia";
import { HttpProblem, invalidField } from "../lib/problem";
import { decodes } from "../lib/request-target";
import { type RouteEntry, routeIndex } from "./route-index";

/**
 * On a route that takes a query (the lists and their filters), a parameter it does not name is a
 * 422 naming it: a misspelt filter (`?actors=`) would otherwise answer as though none were given,
 * on the audit export with every event. Checked before the handler, once the caller is authorised
 * (401 and 403 first, as for bodies); so is a parameter sent twice. Routes without a query
 * schema ignore a query, as before.
 */
export const queryGuard = (routes: () => readonly RouteEntry[]) => {
  const allowedFor = routeIndex(routes, (route): ReadonlySet<string> | undefined => {
    const query = (route.hooks as { query?: { properties?: object } } | undefined)?.query;
    return query?.properties ? new Set(Object.keys(query.properties)) : undefined;
  });
  return new Elysia({ name: "query-guard" }).onBeforeHandle({ as: "global" }, ({ request, route }) => {
    const url = request.url;
    const start = url.indexOf("?");
    if (start < 0) return;
    const allowed = allowedFor(request.method, route);
    if (!allowed) return;
    // URLSearchParams would read `%FF` as U+FFFD, and a filter would quietly match nothing.
    const malformed = malformedQuery(url);
    if (malformed) throw malformed;
    const seen = new Set<string>();
    for (const name of new URLSearchParams(url.slice(start + 1)).keys()) {
      if (!allowed.has(name)) {
        throw invalidField(name, `Not a parameter of this route; it takes ${[...allowed].join(", ")}.`, "query");
      }
      // No parameter takes a list: `?outcome=success&outcome=failure` would filter by one of them, silently.
      if (seen.has(name)) throw invalidField(name, `${name} is sent more than once; send it once.`, "query");
      seen.add(name);
    }
  });
};

/**
 * A 400 naming the first parameter of `url`'s query whose name or value is not percent-encoded
 * UTF-8 (named as sent when its name is the part that is not), or undefined. Also asked when a
 * parameter fails its route's schema: `?limit=%FF` reaches the validator as U+FFFD.
 */
export function malformedQuery(url: string): HttpProblem | undefined {
  const start = url.indexOf("?");
  if (start < 0) return undefined;
  for (const pair of url.slice(start + 1).split("&")) {
    if (decodes(pair)) continue;
    const equals = pair.indexOf("=");
    const name = equals < 0 ? pair : pair.slice(0, equals);
    const field = decodes(name) ? decodeURIComponent(name.replaceAll("+", " ")) : name;
    return new HttpProblem(400, "malformed-query", `The query parameter ${field} is not valid percent-encoded UTF-8.`, {
      errors: [{ in: "query", field, message: "Not valid percent-encoded UTF-8" }],
    });
  }
  return undefined;
}
