import { Elysia } from "elysia";
import { isSafeRequestId, newRequestId } from "../lib/ids";
import { createAccessLog, type Logger } from "../lib/logger";

export const REQUEST_ID_HEADER = "x-request-id";
/** Label for requests that matched no route: one value, so scanners cannot blow up cardinality. */
export const UNMATCHED_ROUTE = "unmatched";

// ? A symbol-keyed slot on the request rather than a WeakMap: a WeakMap entry per request cost
// ~0.1 µs, mostly in the garbage collector.
const STARTED_AT = Symbol("warden.startedAt");
type Timed = Request & { [STARTED_AT]?: number };

/** Seconds since the request entered the pipeline. */
export function elapsedSeconds(request: Request): number {
  const start = (request as Timed)[STARTED_AT];
  return start === undefined ? 0 : (performance.now() - start) / 1000;
}

/** The status actually sent, whether the handler returned a Response or set `set.status`. */
export function responseStatus(response: unknown, set: { status?: number | string }): number {
  if (response instanceof Response) return response.status;
  return typeof set.status === "number" ? set.status : 200;
}

export function requestIdOf(set: { headers: Record<string, unknown> }): string | undefined {
  const id = set.headers[REQUEST_ID_HEADER];
  return typeof id === "string" ? id : undefined;
}

/** Who asked, as the audit trail records it. */
export interface RequestMeta {
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly requestId: string;
}

export function requestMetaOf(
  request: Request,
  set: { headers: Record<string, unknown> },
  server: { requestIP(request: Request): { address: string } | null } | null,
): RequestMeta {
  return {
    ip: server?.requestIP(request)?.address ?? null,
    userAgent: request.headers.get("user-agent"),
    requestId: requestIdOf(set) ?? "",
  };
}

/**
 * Starts the request's clock and picks its id (a sane caller-supplied X-Request-ID, else a new
 * UUID). The Elysia hook and the lean path (src/plugins/lean-routes.ts) both begin here.
 */
export function beginRequest(request: Request): string {
  (request as Timed)[STARTED_AT] = performance.now();
  const incoming = request.headers.get(REQUEST_ID_HEADER);
  return isSafeRequestId(incoming) ? incoming : newRequestId();
}

interface AfterResponse {
  request: Request;
  route: string;
  set: { headers: Record<string, unknown>; status?: number | string };
  response: unknown;
  /** Resolved by the auth macro on authenticated routes. */
  principal?: { sub: string; tid: string };
}

/**
 * Gives every request an id (a sane caller-supplied X-Request-ID, else a new UUID), echoes it,
 * and writes one JSON access-log line per request once the response is sent.
 */
export const requestContext = (log: Logger) => {
  const writeAccessLine = createAccessLog(log);
  return (
    new Elysia({ name: "request-context" })
      .onRequest(({ request, set }) => {
        set.headers[REQUEST_ID_HEADER] = beginRequest(request);
      })
      // Destructured so Elysia's static analysis sees which parts of the context are used (taking
      // the whole context makes it parse cookies and more on every request).
      .onAfterResponse({ as: "global" }, ({ request, route, set, response, principal }: AfterResponse) => {
        writeAccessLine({
          requestId: requestIdOf(set),
          method: request.method,
          route: route || UNMATCHED_ROUTE,
          status: responseStatus(response, set),
          durationMs: Math.round(elapsedSeconds(request) * 100_000) / 100,
          tenant: principal?.tid,
          principal: principal?.sub,
        });
      })
  );
};
