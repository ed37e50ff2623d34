import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { getSchemaValidator, ValidationError } from "elysia";

/** Defaults, normalization, the 422 check and decoding of a parsed request body. */
export type BodyStep = (parsed: unknown) => unknown;

/** Elysia's compiled body validator (getSchemaValidator), as far as its body step reads it. */
interface BodyValidator {
  readonly schema: TSchema;
  Clean?(value: unknown): unknown;
  Check(value: unknown): boolean;
  Decode(value: unknown): unknown;
  readonly hasDefault: boolean;
  readonly hasTransform: boolean;
  readonly isOptional: boolean;
}

const isNotEmpty = (value: object): boolean => {
  for (const _ in value) return true;
  return false;
};

/**
 * Elysia's body step for a route with a body schema (elysia/dist/compose.mjs, `hasBody &&
 * validator.body`), step for step: defaults merged in, normalized (Clean), checked (422), decoded.
 */
function bodyStep(validator: BodyValidator, allowUnsafeValidationDetails: boolean): (body: unknown) => unknown {
  const root = validator.schema as TSchema & { type?: string };
  const defaults = validator.hasDefault ? Value.Default(root, root.type === "object" ? {} : undefined) : undefined;
  const defaultsJson = defaults === undefined || defaults === null ? undefined : JSON.stringify(defaults);
  const refuse = (body: unknown) => new ValidationError("body", validator as never, body, allowUnsafeValidationDetails);
  return (parsed) => {
    let body = parsed;
    const notEmptyObject =
      !!body && typeof body === "object" && (isNotEmpty(body) || (body as object) instanceof ArrayBuffer);
    if (defaultsJson !== undefined) {
      const fresh = JSON.parse(defaultsJson) as unknown;
      if (Array.isArray(fresh)) body ||= fresh;
      else if (typeof fresh === "object") body = Object.assign(fresh as object, body);
      else body = fresh;
    }
    try {
      if (validator.Clean) body = validator.Clean(body);
    } catch {
      // As Elysia: a body the cleaner cannot walk is left for the check to refuse.
    }
    if ((validator.isOptional ? notEmptyObject : true) && validator.Check(body) === false) throw refuse(body);
    if (validator.hasTransform && notEmptyObject) {
      try {
        body = validator.Decode(body);
      } catch (error) {
        if ((error as Error).constructor.name === "TransformDecodeError") {
          throw (error as { error?: unknown }).error ?? refuse(body);
        }
      }
    }
    return body;
  };
}

/**
 * The body step Elysia composes for a route with this body schema, with a validator built as
 * Elysia builds it (its exported getSchemaValidator). Elysia also coerces a primitive root (a
 * number or boolean body); an object root, the only kind allowed here, is left as it is. Throws
 * when the schema is not an object.
 */
export function elysiaBodyStep(
  schema: unknown,
  config: { readonly normalize?: unknown; readonly allowUnsafeValidationDetails?: boolean },
): BodyStep {
  if ((schema as { type?: string } | undefined)?.type !== "object")
    throw new Error("a lean POST needs an object body schema");
  const normalize = (config.normalize ?? true) as boolean;
  const validator = getSchemaValidator(schema as TSchema, { normalize }) as unknown as BodyValidator | undefined;
  if (!validator) throw new Error("its body schema gave no validator");
  return bodyStep(validator, config.allowUnsafeValidationDetails ?? false);
}
