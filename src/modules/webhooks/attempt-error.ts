/**
 * A failed attempt as it is stored and shown (the delivery's `last_error`, its attempts, the
 * dashboard): never the receiver's URL, whose path or query may hold the receiver's token, while
 * non-admins see only its origin. Bun's fetch errors quote it (`ERR_TLS_CERT_ALTNAME_INVALID
 * fetching "https://…/hooks/T0KEN?token=…"`), and so may a message of anything below it.
 */
export function attemptError(error: unknown, timeoutMs: number): string {
  if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError"))
    return `no answer within ${timeoutMs} ms`;
  if (error instanceof Error) {
    const problem = error as Error & { detail?: string };
    return withoutUrls(problem.detail ?? error.message).slice(0, 500);
  }
  return "unknown error";
}

const FETCHING = / fetching "[^"]*"/g;
const URL_IN_TEXT = /\b[a-z][a-z\d+.-]*:\/\/[^\s"'<>]*/gi;

function withoutUrls(message: string): string {
  return message.replace(FETCHING, "").replace(URL_IN_TEXT, "(the receiver's URL)");
}
