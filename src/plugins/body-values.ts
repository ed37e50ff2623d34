/**
 * What a parsed request body holds that the service cannot keep as sent: values JSON can say but
 * storage cannot, nesting too deep to validate, and fields sent twice.
 */
import { type HttpProblem, invalidField } from "../lib/problem";

/**
 * Levels of arrays and objects a JSON body may nest. Validation, error reporting and
 * serialisation all recurse: a 10 KB body of 5 000 nested arrays overflowed the stack (a 500) and
 * 100 000 levels of `data` held the event loop for 2 s. No field of ours needs more than a few.
 */
const MAX_JSON_DEPTH = 32;

/**
 * A field sent twice (a form's repeated name, a JSON object's repeated key) is refused, not
 * settled by taking the last value: which one a client, a proxy or a log meant is anyone's guess
 * (`role=viewer&role=admin`).
 */
export function sentTwice(field: string): HttpProblem {
  return invalidField(field, `${field} is sent more than once; send it once.`);
}

/**
 * One walk of the parsed body. Nesting deeper than MAX_JSON_DEPTH throws its 422 (naming the
 * top-level field, or the body itself). What JSON can say but the service cannot keep as sent is
 * returned as the 422 to give once the caller is authorised: a number beyond a double's range
 * (`1e400` parses as Infinity and would be written back as null), a string holding a lone
 * surrogate, in a value or a key (`"\ud800"`: SQLite stores UTF-8 and would keep U+FFFD in its place, and
 * strict JSON parsers downstream refuse it) and a `__proto__`
 * key (JSON.parse makes it a plain key, but copying the object drops it or sets a prototype),
 * each naming the field's path (`data.n`, `labels.__proto__`); and, given the JSON text it was
 * parsed from, a key an object repeats (JSON.parse keeps the last).
 */
export function checkValues(body: unknown, json: string | undefined): HttpProblem | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const walk = new ValueWalk(Array.isArray(body));
  walk.object(body, 1);
  if (walk.unkept || json === undefined) return walk.unkept;
  // Every key in the text is followed by a colon: no more colons than keys parsed, no key
  // repeated. Only a text with colons to spare (in its strings, or a repeated key) is read again.
  const repeated = colonsIn(json) > walk.keys ? repeatedKey(json) : undefined;
  return repeated === undefined ? undefined : sentTwice(repeated);
}

function colonsIn(text: string): number {
  let count = 0;
  for (let at = text.indexOf(":"); at !== -1; at = text.indexOf(":", at + 1)) count++;
  return count;
}

/** JSON's tokens but numbers and literals, which say nothing of keys; a string is whole (escapes included). */
const JSON_TOKEN = /"(?:[^"\\]|\\.)*"|[{}[\],:]/g;

/**
 * The path of the first key a JSON text repeats within one object (`labels.env`), if any. The
 * text is valid JSON (it parsed): outside its strings there is no quote, so each string is
 * matched whole from its opening quote.
 */
function repeatedKey(json: string): string | undefined {
  const frames: { keys: Set<string> | undefined; at: string | number }[] = [];
  let lastString = "";
  JSON_TOKEN.lastIndex = 0;
  for (let match = JSON_TOKEN.exec(json); match !== null; match = JSON_TOKEN.exec(json)) {
    const token = match[0];
    const frame = frames.at(-1);
    if (token === "{") frames.push({ keys: new Set(), at: "" });
    else if (token === "[") frames.push({ keys: undefined, at: 0 });
    else if (token === "}" || token === "]") frames.pop();
    else if (token === "," && frame?.keys === undefined && frame !== undefined) frame.at = (frame.at as number) + 1;
    else if (token === ":" && frame?.keys !== undefined) {
      const key = JSON.parse(lastString) as string;
      frame.at = key;
      if (frame.keys.has(key)) return frames.map((f) => f.at).join(".");
      frame.keys.add(key);
    } else if (token.startsWith('"')) lastString = token;
  }
  return undefined;
}

class ValueWalk {
  private readonly trail: (string | number)[] = [];
  /** The first value the service could not keep as sent. */
  unkept: HttpProblem | undefined;
  /** Keys seen, at every depth. */
  keys = 0;

  /** A body that is an array has no top-level field: too deep, it is named as the body. */
  constructor(private readonly rootIsArray: boolean) {}

  object(value: object, depth: number): void {
    if (depth > MAX_JSON_DEPTH) {
      const field = this.rootIsArray ? "" : String(this.trail[0] ?? "");
      throw invalidField(field, `${field || "the body"} nests deeper than ${MAX_JSON_DEPTH} levels`);
    }
    const trail = this.trail;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        trail.push(i);
        this.value(value[i], depth);
        trail.pop();
      }
      return;
    }
    for (const key in value) {
      this.keys++;
      // A key is kept and sent on (a label, a notification's data, a webhook body) like a value.
      const wellFormed = key.isWellFormed();
      trail.push(wellFormed ? key : JSON.stringify(key).slice(1, -1));
      if (!wellFormed) this.note("Expected keys without lone surrogates (unpaired \\ud800-\\udfff)");
      if (key === "__proto__") this.note("__proto__ is not allowed as a key");
      this.value((value as Record<string, unknown>)[key], depth);
      trail.pop();
    }
  }

  private value(value: unknown, depth: number): void {
    if (typeof value === "string") {
      if (!value.isWellFormed()) this.note("Expected text without lone surrogates (unpaired \\ud800-\\udfff)");
    } else if (typeof value === "number") {
      if (!Number.isFinite(value)) this.note("Expected a number a double can hold");
    } else if (typeof value === "object" && value !== null) {
      this.object(value, depth + 1);
    }
  }

  private note(message: string): void {
    this.unkept ??= invalidField(this.trail.join("."), message);
  }
}
