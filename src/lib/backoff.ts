/** Retry timing for outgoing deliveries. Pure: the random source is passed in. */

const JITTER = 0.2;
/** Longest wait a receiver's Retry-After can ask for. */
export const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;

/**
 * `schedule[i]` is the wait in seconds before attempt i + 1 (the first is usually 0). After
 * `attemptsMade` attempts, the wait before the next one with ±20 % jitter, or undefined when the
 * schedule is used up.
 */
export function nextRetryDelayMs(
  schedule: readonly number[],
  attemptsMade: number,
  random: () => number = Math.random,
): number | undefined {
  const seconds = schedule[attemptsMade];
  if (seconds === undefined) return undefined;
  const base = seconds * 1000;
  return Math.round(base + base * JITTER * (2 * random() - 1));
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date; undefined when absent or unreadable. */
export function parseRetryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  let ms: number;
  if (/^\d+$/.test(value)) ms = Number(value) * 1000;
  else {
    const date = /GMT$/.test(value) ? Date.parse(value) : Number.NaN;
    if (Number.isNaN(date)) return undefined;
    ms = Math.max(0, date - now);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}
