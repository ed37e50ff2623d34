import { t } from "elysia";
import { EXPECTED } from "../../lib/formats";
import { documentedAs } from "../../lib/openapi-shape";

/**
 * RFC 3339 timestamps. `format: "date-time"` for the OpenAPI document only (generated clients
 * read them as dates): Elysia checks response formats on every request, and that check alone
 * cost more than the rest of GET /v1/auth/me.
 */
export const dateTime = t.String({
  description: "RFC 3339 date-time (UTC)",
  examples: ["2026-01-01T00:00:00.000Z"],
  ...documentedAs({ format: "date-time" }),
});

const short = (description: string) => t.String({ maxLength: 512, description });

const GRANT_TYPES = ["password", "client_credentials", "refresh_token"];

/**
 * One body for every grant (JSON or form-encoded); which fields are needed depends on `grant_type`.
 * Its example is what Swagger UI fills in: without one, every field holds "string", and a scope
 * is refused before anything else is read.
 */
export const tokenRequest = t.Object(
  {
    // Optional in the schema so a missing one is OAuth's 400 invalid_request, not a generic 422;
    // a string, not an enum, so an unknown one is OAuth's unsupported_grant_type. The enum is the
    // document's alone.
    grant_type: t.Optional(
      t.String({
        maxLength: 64,
        description: "password, client_credentials or refresh_token",
        examples: ["client_credentials"],
        ...documentedAs({ enum: GRANT_TYPES }),
      }),
    ),
    tenant: t.Optional(short("password grant: the tenant slug")),
    username: t.Optional(short("password grant: the user's email")),
    password: t.Optional(t.String({ maxLength: 1024, description: "password grant" })),
    client_id: t.Optional(short("client_credentials grant: the API key id (optional)")),
    client_secret: t.Optional(short("client_credentials grant: the API key, wdn_<id>_<secret>")),
    refresh_token: t.Optional(short("refresh_token grant")),
    scope: t.Optional(short("none: this server issues no scopes, and refuses a request for one (invalid_scope)")),
  },
  { examples: [{ grant_type: "client_credentials", client_secret: "wdn_<key id>_<secret>" }] },
);

export const tokenResponse = t.Object({
  access_token: t.String(),
  token_type: t.Literal("Bearer"),
  expires_in: t.Integer({ description: "seconds" }),
  refresh_token: t.String(),
});

export const revokeRequest = t.Object({
  token: t.Optional(
    t.String({ maxLength: 8192, description: "required; optional here so its absence is RFC 7009's invalid_request" }),
  ),
  token_type_hint: t.Optional(t.String({ maxLength: 64 })),
});

export const role = t.Union([t.Literal("admin"), t.Literal("developer"), t.Literal("viewer")]);

export const me = t.Object({
  sub: t.String({ description: "user id" }),
  tenant: t.String(),
  role,
  session: t.String(),
  token_id: t.String(),
  issued_at: dateTime,
  expires_at: dateTime,
});

export const session = t.Object({
  id: t.String(),
  grant: t.String(),
  role,
  api_key_id: t.Nullable(t.String()),
  ip: t.Nullable(t.String()),
  user_agent: t.Nullable(t.String()),
  created_at: dateTime,
  expires_at: dateTime,
  current: t.Boolean(),
});

export const sessionList = t.Object({ sessions: t.Array(session), next_cursor: t.Nullable(t.String()) });

export const jwks = t.Object({ keys: t.Array(t.Record(t.String(), t.Unknown())) });

/** A list's `cursor` where pages are keyed by ULID: anything else is a 422 naming it, not "from the start". */
export const ulidCursor = t.String({
  maxLength: 26,
  pattern: "^[0-9A-HJKMNP-TV-Z]{26}$",
  description: "next_cursor of the previous page",
  [EXPECTED]: "Expected the next_cursor of a previous page",
});

/** A list's `limit`. */
export const pageLimit = t.Integer({
  minimum: 1,
  maximum: 200,
  default: 50,
  description: "the most items a page holds",
});

/**
 * One of a list of strings. `t.UnionEnum` alone gives the schema its first value as a default,
 * so a missing field (or an absent query filter) silently became that value.
 */
export function oneOf<const T extends readonly [string, ...string[]]>(
  values: T,
  options: { description?: string } = {},
) {
  return t.UnionEnum(values, { default: undefined, ...options });
}

export const sessionPage = t.Object({
  limit: t.Optional(pageLimit),
  cursor: t.Optional(ulidCursor),
});
