/** A request URL's path and query as sent (`/v1/x?y`), without parsing the whole URL. */
export function pathAndQueryOf(url: string): string {
  return url.slice(url.indexOf("/", url.indexOf("//") + 2));
}

/** A request URL's path alone, without parsing the whole URL. */
export function pathOf(url: string): string {
  const target = pathAndQueryOf(url);
  const query = target.indexOf("?");
  return query < 0 ? target : target.slice(0, query);
}

/** Whether a path or query's percent-encoding decodes to UTF-8 (`%FF` does not). */
export function decodes(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}
