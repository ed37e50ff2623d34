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
