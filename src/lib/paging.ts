/**
 * A list read one row past `limit` (that row tells whether another page exists): the page, and
 * the cursor to the next one, the last shown row's id, or null at the end.
 */
export function pageOf<T extends { readonly id: string }>(
  rows: readonly T[],
  limit: number,
): { page: T[]; next_cursor: string | null } {
  const page = rows.slice(0, limit);
  return { page, next_cursor: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
}
