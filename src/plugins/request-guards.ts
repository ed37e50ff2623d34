import { Elysia } from "elysia";
import { HttpProblem } from "../lib/problem";
import { checkValues, sentTwice } from "./body-values";
import { type RouteEntry, routeIndex } from "./route-index";

const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function mediaType(contentType: string | null): string {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

function isJson(type: string): boolean {
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

const FORM = "application/x-www-form-urlencoded";
/**
 * For routes with a body: `parse: JSON_OR_FORM`. Our own parser (below) still reads the body;
 * this names the media types, which is how the OpenAPI document learns them (it cannot look
 * inside a parser function, and would list none).
 */
export const JSON_OR_FORM: ("json" | "urlencoded")[] = ["json", "urlencoded"];

function hasBody(request: Request): boolean {
  const length = request.headers.get("content-length");
  if (length !== null) return length !== "0";
  return request.body !== null;
}

function headerBytes(headers: Headers): number {
  let total = 0;
  // forEach, not for…of: no [name, value] array per header.
  headers.forEach((value, name) => {
    total += name.length + value.length + 4;
  });
  return total;
}

/** 431 when the header block is over the limit; the Elysia hook and the lean path both check here. */
export function checkHeaderSize(request: Request, limitBytes: number): void {
  if (headerBytes(request.headers) > limitBytes) {
    throw new HttpProblem(431, "headers-too-large", `Request headers exceed ${limitBytes} bytes.`);
  }
}

export interface RequestLimits {
  readonly bodyLimitBytes: number;
  readonly headerLimitBytes: number;
}

/**
 * Rejects what the API never accepts before any work is done on it: oversized headers (431),
 * bodies over the limit by Content-Length (413), and bodies that are neither JSON nor
 * form-encoded (415). The Elysia hook and the lean path both check here.
 */
export function guardRequest(request: Request, limits: RequestLimits): void {
  checkHeaderSize(request, limits.headerLimitBytes);
  if (!BODY_METHODS.has(request.method) || !hasBody(request)) return;
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > limits.bodyLimitBytes) throw tooLarge(limits.bodyLimitBytes);
  const coding = request.headers.get("content-encoding");
  // We decode no content coding: a gzip body would otherwise read as malformed JSON.
  if (coding !== null && coding.trim().toLowerCase() !== "identity") {
    throw new HttpProblem(
      415,
      "unsupported-content-encoding",
      `Content-Encoding "${coding}" is not accepted; send the body unencoded.`,
      {
        headers: { "accept-encoding": "identity" },
      },
    );
  }
  const contentType = request.headers.get("content-type");
  const type = mediaType(contentType);
  const charset = contentType === null ? undefined : /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    throw new HttpProblem(415, "unsupported-media-type", `charset "${charset}" is not accepted; send UTF-8.`, {
      headers: { "accept-post": `application/json, ${FORM}` },
    });
  }
  if (!isJson(type) && type !== FORM) {
    throw new HttpProblem(
      415,
      "unsupported-media-type",
      `Content-Type ${type ? `"${type}"` : "(none)"} is not accepted; send application/json or ${FORM}.`,
      { headers: { "accept-post": `application/json, ${FORM}` } },
    );
  }
}

/** Whether a route's `parse` names JSON and not forms: such a route takes JSON only. */
export function takesJsonOnly(hooks: unknown): boolean {
  const parse = (hooks as { parse?: readonly { fn?: unknown }[] } | undefined)?.parse;
  if (!Array.isArray(parse) || parse.length === 0) return false;
  const names = parse.map((step) => step.fn);
  return names.includes("json") && !names.includes("urlencoded");
}

/**
 * 415 for a form body on a route that takes JSON only (its body holds nested objects a form
 * cannot carry): the guards let forms through because most routes take both, and the form would
 * otherwise be read and refused field by field as a 422.
 */
export function refuseFormBody(request: Request): void {
  if (mediaType(request.headers.get("content-type")) !== FORM || !hasBody(request)) return;
  throw new HttpProblem(
    415,
    "unsupported-media-type",
    `Content-Type "${FORM}" is not accepted here; send application/json.`,
    {
      headers: { "accept-post": "application/json" },
    },
  );
}

// ? A symbol slot on the request, as request-context's clock: read only when a problem is written.
const PARSED_BODY = Symbol("warden.parsedBody");

/** The body parseBody read from this request, as parsed (before any validation), if it read one. */
export function parsedBodyOf(request: Request): unknown {
  return (request as Request & { [PARSED_BODY]?: unknown })[PARSED_BODY];
}

const VALUE_PROBLEM = Symbol("warden.valueProblem");
const FORM_BODY = Symbol("warden.formBody");
const BLANK_BODY = Symbol("warden.blankBody");
type Parsed = Request & {
  [PARSED_BODY]?: unknown;
  [VALUE_PROBLEM]?: HttpProblem;
  [FORM_BODY]?: true;
  [BLANK_BODY]?: true;
};

/** Whether a JSON body of whitespace alone was sent: no body to a route that takes none, malformed to one that does. */
export function bodyWasBlank(request: Request): boolean {
  return (request as Parsed)[BLANK_BODY] === true;
}

/** Whether the body parseBody read was a form (every value a string), not JSON. */
export function bodyWasForm(request: Request): boolean {
  return (request as Parsed)[FORM_BODY] === true;
}

/**
 * The parsed body of a JSON or form request (undefined for other types and an empty JSON body);
 * 400 when malformed or not UTF-8, 413 past the limit, 422 nested too deep. A value the service
 * cannot keep as sent (see checkValues) is not refused here but kept for `refuseUnkeptValues`: the
 * body is parsed before the caller is authorised, who should hear 401 or 403 first.
 */
export async function parseBody(request: Request, bodyLimitBytes: number): Promise<unknown> {
  const { body, json, repeated } = await parseBodyText(request, bodyLimitBytes);
  (request as Parsed)[PARSED_BODY] = body;
  // Nesting past the limit is refused at once, like an oversized body: validation would recurse.
  const unkept = checkValues(body, json) ?? (repeated === undefined ? undefined : sentTwice(repeated));
  if (unkept) (request as Parsed)[VALUE_PROBLEM] = unkept;
  return body;
}

/** The 422 parseBody found in the body's values, if any: the auth macro (or, on routes without it, a hook before the handler) and the lean path call this once the caller is authorised. */
export function refuseUnkeptValues(request: Request): void {
  const problem = (request as Parsed)[VALUE_PROBLEM];
  if (problem !== undefined) throw problem;
}

interface ReadBody {
  readonly body: unknown;
  /** The JSON text the body was parsed from. */
  readonly json?: string;
  /** A form's first field sent more than once. */
  readonly repeated?: string;
}

const NO_BODY: ReadBody = { body: undefined };

async function parseBodyText(request: Request, bodyLimitBytes: number): Promise<ReadBody> {
  const type = mediaType(request.headers.get("content-type"));
  if (!isJson(type) && type !== FORM) return NO_BODY;
  const text = await readText(request, bodyLimitBytes);
  if (type === FORM) {
    (request as Parsed)[FORM_BODY] = true;
    return parseForm(text);
  }
  if (text.trim() === "") {
    // A route that takes a body refuses it (the body guard), so an optional body is not taken
    // for "none sent" and its defaults; one that takes none ignores it, as it ignores any body.
    if (text !== "") (request as Parsed)[BLANK_BODY] = true;
    return NO_BODY;
  }
  try {
    return { body: JSON.parse(text), json: text };
  } catch (error) {
    throw new HttpProblem(400, "malformed-json", `The body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * guardRequest before routing; then our own parser for JSON and forms, so the limit holds for
 * chunked bodies too and a malformed document is a clear 400.
 */
export const requestGuards = (limits: RequestLimits, routes: () => readonly RouteEntry[]) => {
  const jsonOnly = routeIndex(routes, (route) => (takesJsonOnly(route.hooks) ? true : undefined));
  return (
    new Elysia({ name: "request-guards", seed: limits })
      .onRequest(({ request }) => guardRequest(request, limits))
      .onParse({ as: "global" }, ({ request, route }) => {
        if (jsonOnly(request.method, route)) refuseFormBody(request);
        return parseBody(request, limits.bodyLimitBytes);
      })
      // Routes with the auth macro refuse them as soon as the caller is authorised; this is for the rest.
      .onBeforeHandle({ as: "global" }, ({ request }) => refuseUnkeptValues(request))
      // `?cursor=&limit=` (a form left blank, a template filled in) means "not given", not "".
      .onTransform({ as: "global" }, ({ query }) => {
        for (const key in query) if (query[key] === "") delete query[key];
      })
  );
};

/**
 * Fatal: bytes that are not UTF-8 are a 400, not U+FFFD stored in their place. Shared by whole
 * bodies only: a call without `stream` starts afresh, even after one that threw; a chunked body
 * gets a decoder of its own.
 */
const WHOLE_BODY = new TextDecoder("utf-8", { fatal: true });

/**
 * The body as text, never buffering more than the limit. A declared Content-Length was already
 * checked against it, and HTTP/1.1 framing stops the body there, so the native reader is safe;
 * a chunked body is read chunk by chunk and abandoned as soon as it passes the limit.
 */
async function readText(request: Request, limit: number): Promise<string> {
  // Ours to fix, not the client's: stays a 500.
  if (request.bodyUsed) throw new Error("the request body was already read");
  try {
    return await readWhole(request, limit);
  } catch (error) {
    if (error instanceof HttpProblem) throw error;
    // The body stopped coming (the client went away, or the connection broke): the client's
    // doing, so a 4xx that burns no error budget, logged as nothing unexpected.
    throw new HttpProblem(400, "incomplete-body", "The request body ended before it was complete.");
  }
}

async function readWhole(request: Request, limit: number): Promise<string> {
  // Before `request.body`, which makes a stream of a body Bun would otherwise hand over whole
  // (~0.4 µs a request under load).
  if (request.headers.has("content-length")) {
    const bytes = await request.bytes();
    try {
      return WHOLE_BODY.decode(bytes);
    } catch {
      throw notUtf8();
    }
  }
  if (!request.body) return "";
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const decode = (bytes?: ArrayBuffer | Uint8Array, stream = false) => {
    try {
      return decoder.decode(bytes, { stream });
    } catch {
      throw notUtf8();
    }
  };
  let text = "";
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge(limit);
    text += decode(chunk, true);
  }
  return text + decode();
}

function notUtf8(): HttpProblem {
  return new HttpProblem(400, "malformed-body", "The request body is not valid UTF-8.");
}

/**
 * A form body as `URLSearchParams` reads it, except that a percent-encoded byte sequence that is
 * not UTF-8 (`%FF`) is a 400: the standard parser puts U+FFFD in its place, silently.
 */
function parseForm(text: string): ReadBody {
  const params = new URLSearchParams(text);
  const fields = Object.fromEntries(params);
  for (const [name, value] of Object.entries(fields)) {
    if ((name + value).includes("\uFFFD") && !/\uFFFD|%EF%BF%BD/i.test(text)) throw notUtf8();
  }
  if (params.size === Object.keys(fields).length) return { body: fields };
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) return { body: fields, repeated: name };
    seen.add(name);
  }
  return { body: fields };
}

function tooLarge(limit: number): HttpProblem {
  return new HttpProblem(413, "body-too-large", `The request body exceeds ${limit} bytes.`);
}
