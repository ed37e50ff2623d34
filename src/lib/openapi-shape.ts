/** Where a schema carries what the OpenAPI document says of it in its place. */
export const DOCUMENTED_AS = "x-documented-as";

/**
 * Keywords for the OpenAPI document only, out of the validator's sight: the docs plugin writes
 * them into the document in place of this key. A `type: "object"` on a t.Unknown, for one, breaks
 * Elysia's normalizer (exact-mirror goes by `type`, finds no `properties` and throws), and Elysia
 * then prints the whole schema to the console at the route's first request.
 */
export function documentedAs(shape: Record<string, unknown>): { [DOCUMENTED_AS]: Record<string, unknown> } {
  return { [DOCUMENTED_AS]: shape };
}

/** Where an operation's `detail` carries headers of one of its responses. */
export const RESPONSE_HEADERS = "x-response-headers";

/**
 * Headers of a response, for an operation's `detail`: the generator writes a response with a
 * schema from the schema alone, dropping what `detail.responses` says of it, so the docs plugin
 * adds them to the document's response afterwards.
 */
export function responseHeaders(
  status: number,
  headers: Record<string, { description: string; schema: Record<string, unknown> }>,
): { [RESPONSE_HEADERS]: Record<number, typeof headers> } {
  return { [RESPONSE_HEADERS]: { [status]: headers } };
}
