/** Identifier helpers. */

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** A caller-supplied X-Request-ID is echoed only when it cannot smuggle anything into logs or headers. */
export function isSafeRequestId(value: string | null): value is string {
  return value !== null && SAFE_REQUEST_ID.test(value);
}

export function newRequestId(): string {
  return crypto.randomUUID();
}
