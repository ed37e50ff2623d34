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
 * JSON lines on stdout. The destination is asynchronous: lines written while a write is in
 * flight are coalesced into the next one, so a log line per request stays off the hot path
 * without holding lines back when traffic is low. `flushLogger` drains it at shutdown.
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
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

export function flushLogger(log: Logger): void {
  try {
    log.flush();
  } catch {
    // A closed stdout cannot be flushed; nothing else to do at exit.
  }
}
