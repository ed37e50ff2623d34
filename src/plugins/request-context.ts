import { Elysia } from "elysia";
import { isSafeRequestId, newRequestId } from "../lib/ids";
import type { Logger } from "../lib/logger";

export const REQUEST_ID_HEADER = "x-request-id";
/** Label for requests that matched no route: one value, so scanners cannot blow up cardinality. */
export const UNMATCHED_ROUTE = "unmatched";

const startedAt = new WeakMap<Request, number>();

/** Seconds since the request entered the pipeline. */
export function elapsedSeconds(request: Request): number {
  const start = startedAt.get(request);
  return start === undefined ? 0 : (performance.now() - start) / 1000;
}

/** The status actually sent, whether the handler returned a Response or set `set.status`. */
export function responseStatus(ctx: { response?: unknown; set: { status?: number | string } }): number {
  if (ctx.response instanceof Response) return ctx.response.status;
  return typeof ctx.set.status === "number" ? ctx.set.status : 200;
}

export function requestIdOf(set: { headers: Record<string, unknown> }): string | undefined {
  const id = set.headers[REQUEST_ID_HEADER];
  return typeof id === "string" ? id : undefined;
}

/**
 * Gives every request an id (a sane caller-supplied X-Request-ID, else a new UUID), echoes it,
 * and writes one JSON access-log line per request once the response is sent.
 */
export const requestContext = (log: Logger) =>
  new Elysia({ name: "request-context" })
    .onRequest(({ request, set }) => {
      startedAt.set(request, performance.now());
      const incoming = request.headers.get(REQUEST_ID_HEADER);
      set.headers[REQUEST_ID_HEADER] = isSafeRequestId(incoming) ? incoming : newRequestId();
    })
    .derive({ as: "global" }, ({ set }) => ({ requestId: requestIdOf(set) ?? "" }))
    .onAfterResponse({ as: "global" }, (ctx) => {
      const principal = (ctx as { principal?: { sub: string; tid: string } }).principal;
      log.info(
        {
          request_id: requestIdOf(ctx.set),
          method: ctx.request.method,
          route: ctx.route || UNMATCHED_ROUTE,
          status: responseStatus(ctx),
          duration_ms: Math.round(elapsedSeconds(ctx.request) * 100_000) / 100,
          ...(principal ? { tenant: principal.tid, principal: principal.sub } : {}),
        },
        "request",
      );
    });
