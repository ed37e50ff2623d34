import { describe, expect, test } from "bun:test";
import { MAX_RETRY_AFTER_MS, nextRetryDelayMs, parseRetryAfterMs } from "./backoff";

describe("nextRetryDelayMs", () => {
  const schedule = [0, 5, 300];

  test("follows the schedule and ends after its last step", () => {
    expect(nextRetryDelayMs(schedule, 0, () => 0.5)).toBe(0);
    expect(nextRetryDelayMs(schedule, 1, () => 0.5)).toBe(5000);
    expect(nextRetryDelayMs(schedule, 2, () => 0.5)).toBe(300_000);
    expect(nextRetryDelayMs(schedule, 3, () => 0.5)).toBeUndefined();
  });

  test("jitter stays within ±20 %", () => {
    expect(nextRetryDelayMs(schedule, 1, () => 0)).toBe(4000);
    expect(nextRetryDelayMs(schedule, 1, () => 1)).toBe(6000);
    for (let i = 0; i < 200; i++) {
      const delay = nextRetryDelayMs(schedule, 2) ?? -1;
      expect(delay).toBeGreaterThanOrEqual(240_000);
      expect(delay).toBeLessThanOrEqual(360_000);
    }
  });
});

describe("parseRetryAfterMs", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");

  test("reads seconds and HTTP dates", () => {
    expect(parseRetryAfterMs("7", now)).toBe(7000);
    expect(parseRetryAfterMs("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfterMs("Wed, 31 Dec 2025 23:00:00 GMT", now)).toBe(0);
  });

  test("ignores what it cannot read and caps what is too long", () => {
    expect(parseRetryAfterMs(null, now)).toBeUndefined();
    expect(parseRetryAfterMs("soon", now)).toBeUndefined();
    expect(parseRetryAfterMs("-5", now)).toBeUndefined();
    expect(parseRetryAfterMs("99999999", now)).toBe(MAX_RETRY_AFTER_MS);
  });
});
