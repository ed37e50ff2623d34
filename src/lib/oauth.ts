/** RFC 6749 §5.1 and §5.2: token responses and their errors are never cached. */
export const OAUTH_NO_STORE = { "cache-control": "no-store", pragma: "no-cache" } as const;

/** RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E in `error_description`: no `"`, no `\`. */
export function oauthDescription(text: string): string {
  return text
    .replace(/"/g, "'")
    .replace(/\\/g, "/")
    .replace(/[^\x20-\x7e]/g, "?");
}
