import { FormatRegistry } from "@sinclair/typebox";

/**
 * Stricter string formats than the ones Elysia registers. Its `date-time` takes anything
 * `new Date` can read after an unanchored ISO match: a date alone, "2026-02-30" (read as March 2),
 * a browser's `Date.toString()`. Its `integer` (the string side of `t.Integer`) takes whatever
 * `+value` can read: " 4", "0x3", "4e0". A caller who sends those most likely meant something
 * else; each is a 422 instead. Installed once, before any request is validated (the compiled
 * validators look formats up when they run).
 */
export function installStrictFormats(): void {
  FormatRegistry.Set("date-time", isRfc3339DateTime);
  FormatRegistry.Set("integer", (value) => INTEGER.test(value));
  FormatRegistry.Set(PLAIN_TEXT, isPlainText);
  FormatRegistry.Set(IDENTIFIER_TEXT, isIdentifierText);
}

/**
 * Ours: text without control characters other than tab, newline and carriage return. Each would
 * be stored as a six-byte `\u0001` escape: free text then takes six times the room it should.
 */
export const PLAIN_TEXT = "plain-text";
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

/**
 * A schema's own words for a value its pattern refuses (`[EXPECTED]: "Expected printable ASCII
 * without spaces"`), where TypeBox would quote the regular expression. An OpenAPI extension, so
 * the document may carry it.
 */
export const EXPECTED = "x-expected";

export const NOT_PLAIN_TEXT = "Expected text without control characters (tab, newline and carriage return are fine)";

export function isPlainText(value: string): boolean {
  return !CONTROL.test(value);
}

/**
 * Ours: an identifier a caller names a thing by (a feedback subject, a label's key). Besides
 * control characters (tab and newline too), none of the characters that make text display other
 * than it is: bidirectional overrides and isolates and invisible ones. `"\u202e1234"` would
 * otherwise be a subject of its own that reads as "4321" in a summary.
 */
export const IDENTIFIER_TEXT = "identifier-text";
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const NOT_IN_IDENTIFIERS = /[\u0000-\u001F\u007F\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/;

export const NOT_IDENTIFIER_TEXT =
  "Expected an identifier without control characters, bidirectional formatting or invisible characters (U+200B-U+200F, U+202A-U+202E, U+2066-U+2069, U+FEFF and the like)";

export function isIdentifierText(value: string): boolean {
  return !NOT_IN_IDENTIFIERS.test(value);
}

/**
 * An email address as a user's is checked when it is created (the `email` format Elysia
 * registers): a failed login's username that is none is no user's, and most often a password
 * typed one field early, so the trail does not keep it.
 */
export function isEmailAddress(value: string): boolean {
  return FormatRegistry.Get("email")?.(value) ?? false;
}

const INTEGER = /^-?\d+$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** RFC 3339's `date-time` (no leap seconds), with every field in range for its month. */
export function isRfc3339DateTime(value: string): boolean {
  const match = DATE_TIME.exec(value);
  if (!match) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [1, 2, 3, 4, 5, 6, 8, 9].map((i) =>
    Number(match[i] ?? 0),
  ) as [number, number, number, number, number, number, number, number];
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return false;
  // setUTCFullYear, not Date.UTC: that reads years 0-99 as 1900-1999 (Go's zero time is year 1).
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}
