/** Epoch milliseconds → RFC 3339 UTC, keeping null as null. */
export function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
