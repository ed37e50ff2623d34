import pino from "pino";
import type { LogLevel } from "../config";

export type Logger = pino.Logger;

/** Keys whose values never reach a log line, at any of these depths. */
const REDACT = [
  "password",
  "token",
  "access_token",
  "refresh_token",
  "client_secret",
  "secret",
  "authorization",
  "api_key",
  "*.password",
  "*.token",
  "*.access_token",
  "*.refresh_token",
  "*.client_secret",
  "*.secret",
  "*.authorization",
  "*.api_key",
];

/**
 * JSON lines on stdout. The destination is buffered and asynchronous so a log line per request
 * stays off the hot path; `flushLogger` drains it at shutdown.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "warden" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 }),
  );
}

export function flushLogger(log: Logger): void {
  try {
    log.flush();
  } catch {
    // A closed stdout cannot be flushed; nothing else to do at exit.
  }
}
