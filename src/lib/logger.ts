import pino from "pino";
import type { LogLevel } from "../config";
import { StdoutSink } from "./log-sink";

export type Logger = pino.Logger;

/**
 * A safety net for top-level fields only: wildcard paths double the cost of every line (measured
 * ~3 µs vs ~1.4 µs), and log calls pass flat, known fields anyway — never a request body or headers.
 */
const REDACT = [
  "password",
  "token",
  "access_token",
  "refresh_token",
  "client_secret",
  "secret",
  "authorization",
  "api_key",
];

/** JSON lines on stdout through a batching sink; `flushLogger` drains it before exit. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "warden" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? new StdoutSink(),
  );
}

export function flushLogger(log: Logger): Promise<void> {
  // A closed stdout cannot be flushed; there is nothing else to do at exit, so errors are dropped.
  return new Promise((resolve) => {
    try {
      log.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}

export interface AccessLine {
  readonly requestId: string | undefined;
  readonly method: string;
  readonly route: string;
  readonly status: number;
  readonly durationMs: number;
  readonly tenant: string | undefined;
  readonly principal: string | undefined;
}

const MAX_CACHED_ROUTE_FIELDS = 1024;

/**
 * The per-request access line, formatted by hand into the logger's own stream: the same JSON
 * shape pino writes, for a third of its cost (measured ~0.5 µs vs ~1.5 µs per line). Every
 * field is either ours or passed through JSON.stringify.
 */
export function createAccessLog(log: Logger): (line: AccessLine) => void {
  if (!log.isLevelEnabled("info")) return () => {};
  const stream = (log as unknown as Record<symbol, { write(chunk: string): void }>)[pino.symbols.streamSym];
  if (!stream) throw new Error("logger has no stream");
  // Under load many lines share a millisecond: format its timestamp once (toISOString ~0.2 µs).
  let lastMs = Number.NaN;
  let lastTime = "";
  // Route templates are few, methods nearly so: their JSON is built once per pair (a client can
  // send any method token, so the cache stops growing at a bound).
  const routeFields = new Map<string, Map<string, string>>();
  let cachedPairs = 0;
  const routeFieldsOf = (method: string, route: string): string => {
    let byMethod = routeFields.get(route);
    const cached = byMethod?.get(method);
    if (cached !== undefined) return cached;
    const fields = `,"method":${JSON.stringify(method)},"route":${JSON.stringify(route)}`;
    if (cachedPairs < MAX_CACHED_ROUTE_FIELDS) {
      if (!byMethod) {
        byMethod = new Map();
        routeFields.set(route, byMethod);
      }
      byMethod.set(method, fields);
      cachedPairs++;
    }
    return fields;
  };
  // Under load one caller sends request after request: its fields are escaped once for the run.
  let lastTenant: string | undefined;
  let lastPrincipal: string | undefined;
  let callerFields = "";
  return (line) => {
    const ms = Date.now();
    if (ms !== lastMs) {
      lastMs = ms;
      lastTime = new Date(ms).toISOString();
    }
    let text = `{"level":"info","time":"${lastTime}","service":"warden"`;
    if (line.requestId !== undefined) text += `,"request_id":${JSON.stringify(line.requestId)}`;
    text += `${routeFieldsOf(line.method, line.route)},"status":${line.status},"duration_ms":${line.durationMs}`;
    if (line.tenant !== undefined) {
      if (line.tenant !== lastTenant || line.principal !== lastPrincipal) {
        lastTenant = line.tenant;
        lastPrincipal = line.principal;
        callerFields = `,"tenant":${JSON.stringify(line.tenant)},"principal":${JSON.stringify(line.principal)}`;
      }
      text += callerFields;
    }
    stream.write(`${text},"msg":"request"}\n`);
  };
}
