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
    const malformed = undecodable(url.slice(start + 1));
    if (malformed !== undefined) {
      throw new HttpProblem(
        400,
        "malformed-query",
        `The query parameter ${malformed} is not valid percent-encoded UTF-8.`,
        {
          errors: [{ in: "query", field: malformed, message: "Not valid percent-encoded UTF-8" }],
        },
      );
    }
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

/** The first parameter of a raw query whose name or value does not decode (named as far as it does). */
function undecodable(query: string): string | undefined {
  for (const pair of query.split("&")) {
    const equals = pair.indexOf("=");
    const name = equals < 0 ? pair : pair.slice(0, equals);
    if (!decodes(pair))
      return decodes(name) ? decodeURIComponent(name.replaceAll("+", " ")) : name.replace(/[^\w.-]/g, "?");
  }
  return undefined;
}
