/** An endpoint row, and the checks that it measures what it claims to. */
import { BenchError } from "./host.ts";
import type { WrkResult } from "./wrk.ts";

export type Target =
  | "baseline"
  | "node-hello"
  | "redis-floor"
  | "service"
  | "service-redis"
  | "service-limited"
  | "service-redis-limited"
  | "service-elysia"
  | "service-limited-elysia";

export interface Endpoint {
  name: string;
  target: Target;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  expectedStatus: number;
  /** Concurrent connections for this row (default WRK_CONNECTIONS): fewer for rows that cost milliseconds. */
  connections?: number;
  /**
   * Who produces the load: wrk replaying one request (default), or refresh-load.ts, whose chains
   * each present the refresh token they were just given (wrk cannot: a replayed one is reuse).
   */
  loader?: "wrk" | "refresh-chains";
  /**
   * A marker in `body` that wrk replaces with a per-request counter, for writes that must not
   * repeat (a new jti per revocation). The before/after checks send the body as it is.
   */
  uniqueMarker?: string;
  /** The row queues webhook deliveries: their drain is measured, and waited for, before the next row. */
  leavesDeliveries?: boolean;
}

export function describe(endpoint: Pick<Endpoint, "name" | "method" | "path">): string {
  return `${endpoint.name} (${endpoint.method} ${endpoint.path})`;
}

/** One real request first: a row is only meaningful if the endpoint answers what we think it does. */
export async function checkStatus(endpoint: Endpoint, baseUrl: string, when: string): Promise<void> {
  const response = await fetch(baseUrl + endpoint.path, {
    method: endpoint.method,
    headers: endpoint.headers,
    body: endpoint.body,
    signal: AbortSignal.timeout(5000),
  });
  const body = await response.text();
  if (response.status !== endpoint.expectedStatus) {
    throw new BenchError(
      `${describe(endpoint)} ${when}: expected ${endpoint.expectedStatus}, got ${response.status}\n${body.slice(0, 500)}`,
    );
  }
}

/** wrk only counts "not 2xx/3xx", so that count must be all requests or none, depending on the row. */
export function loadProblems(endpoint: Endpoint, result: WrkResult): string[] {
  const problems: string[] = [];
  const expectedNon2xx = endpoint.expectedStatus < 400 ? 0 : result.requests;
  if (result.non2xx3xx !== expectedNon2xx) {
    problems.push(
      `${endpoint.name}: ${result.non2xx3xx} of ${result.requests} responses were not 2xx/3xx ` +
        `(expected ${expectedNon2xx} for status ${endpoint.expectedStatus})`,
    );
  }
  const { connect, read, write, timeout } = result.socketErrors;
  if (connect + read + write + timeout > 0) {
    problems.push(
      `${endpoint.name}: socket errors connect ${connect}, read ${read}, write ${write}, timeout ${timeout}`,
    );
  }
  return problems;
}
