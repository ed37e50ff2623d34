/**
 * Fields a body's schema does not name: the body guard (src/plugins/body-guard.ts) refuses them,
 * and a validation problem names them when they explain it (src/plugins/errors.ts).
 */
export type Schema = {
  type?: unknown;
  format?: unknown;
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  additionalProperties?: unknown;
  patternProperties?: unknown;
  items?: Schema;
};

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** A field the schema does not name, and the fields it takes where that one was sent. */
export interface Unknown {
  readonly field: string;
  readonly takes: readonly string[];
}

export function findUnknown(schema: Schema | undefined, value: unknown, path: string): Unknown | undefined {
  if (schema === undefined) return undefined;
  if (schema.type === "object" && schema.properties && isRecord(value)) {
    const properties = schema.properties;
    const open =
      (schema.additionalProperties !== undefined && schema.additionalProperties !== false) || schema.patternProperties;
    for (const key in value) {
      // Own keys only: `constructor` or `toString` would otherwise find Object.prototype's.
      const property = Object.hasOwn(properties, key) ? properties[key] : undefined;
      if (property === undefined) {
        if (open) continue;
        return { field: `${path}${key}`, takes: Object.keys(properties) };
      }
      const inner = findUnknown(property, value[key], `${path}${key}.`);
      if (inner !== undefined) return inner;
    }
    return undefined;
  }
  if (schema.type === "array" && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = findUnknown(schema.items, value[i], `${path}${i}.`);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

/**
 * The first field of `value` its object schema does not name, as a dotted path (`recipients.user_id`),
 * at any depth; an array's items by index. Objects of free keys (a t.Record, `additionalProperties`
 * allowed) and schemas of any value (t.Unknown) are not looked into.
 */
export function unknownFieldOf(schema: object | undefined, value: unknown): string | undefined {
  return findUnknown(schema as Schema | undefined, value, "")?.field;
}

/** A field sent in a shape the schema does not take, and what it takes. */
export interface Misfit {
  readonly field: string;
  readonly expected: string;
}

/**
 * The first field, as a dotted path, sent in a shape Elysia would quietly convert instead of
 * refusing: a field that must be an object sent as anything else (its normalizer makes `{}` of
 * `5`, `"x"` or `[]`, and validation then passes what was never sent); and, in JSON, a string
 * where the schema takes a number (`t.Integer`, `t.Numeric`: a union with their string side,
 * which forms and queries need): `"3"` or `"-0"` for a rating is most likely a bug in the caller.
 * The body itself is checked before (it must be an object).
 */
export function findMisfit(
  schema: Schema | undefined,
  value: unknown,
  path: string,
  json: boolean,
): Misfit | undefined {
  if (schema === undefined || value === undefined) return undefined;
  if (schema.type === "object" && schema.properties) {
    if (!isRecord(value)) return path === "" ? undefined : { field: path.slice(0, -1), expected: "Expected object" };
    for (const key in value) {
      const property = Object.hasOwn(schema.properties, key) ? schema.properties[key] : undefined;
      const inner = findMisfit(property, value[key], `${path}${key}.`, json);
      if (inner !== undefined) return inner;
    }
  } else if (schema.type === "array" && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = findMisfit(schema.items, value[i], `${path}${i}.`, json);
      if (inner !== undefined) return inner;
    }
  } else if (json && typeof value === "string" && takesNumberAsString(schema)) {
    return { field: path.slice(0, -1), expected: "Expected a number: in JSON, send it unquoted." };
  }
  return undefined;
}

/** A union with the string side of `t.Integer` or `t.Numeric`, at any depth (`t.Nullable(t.Integer())`). */
function takesNumberAsString(schema: Schema): boolean {
  return (
    schema.anyOf?.some(
      (member) =>
        (member.type === "string" && (member.format === "integer" || member.format === "numeric")) ||
        takesNumberAsString(member),
    ) ?? false
  );
}
