import { describe, expect, test } from "bun:test";
import { isRfc3339DateTime } from "./formats";

describe("isRfc3339DateTime", () => {
  test.each([
    "2026-12-01T22:40:23Z",
    "2026-12-01T22:40:23.123Z",
    "2026-12-01t22:40:23z",
    "2026-12-01 22:40:23+05:30",
    "2024-02-29T00:00:00-08:00",
    // Go's zero time, and the first years, which Date.UTC would read as 1900-1999.
    "0001-01-01T00:00:00Z",
    "0099-12-31T23:59:59Z",
    "0000-02-29T00:00:00Z",
  ])("should accept %s", (value) => {
    expect(isRfc3339DateTime(value)).toBe(true);
  });

  test.each([
    "2026-02-30T00:00:00Z",
    "2025-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-12-01",
    "2026-12-01T24:00:00Z",
    "2026-12-01T22:60:00Z",
    "2026-12-01T22:40:60Z",
    "2026-12-01T22:40:23",
    "2026-12-01T22:40:23+24:00",
    "0001-02-29T00:00:00Z",
    "Tue Dec 01 2026 22:40:23 GMT+0000 (Coordinated Universal Time)",
    "x2026-12-01T22:40:23Zx",
  ])("should refuse %s", (value) => {
    expect(isRfc3339DateTime(value)).toBe(false);
  });
});
