import { t } from "elysia";
import { EXPECTED, PLAIN_TEXT } from "../../lib/formats";
import { dateTime, pageLimit, role, ulidCursor } from "../auth/model";

export const user = t.Object({
  id: t.String(),
  tenant_id: t.String(),
  email: t.String(),
  role,
  created_at: dateTime,
  disabled_at: t.Nullable(dateTime),
});

export const createUserRequest = t.Object({
  email: t.String({ format: "email", maxLength: 254 }),
  role,
  password: t.Optional(t.String({ minLength: 12, maxLength: 1024, description: "omit to have one generated" })),
});

export const createdUser = t.Object({
  user,
  password: t.Optional(t.String({ description: "the generated password, shown once" })),
});

export const userList = t.Object({ users: t.Array(user), next_cursor: t.Nullable(t.String()) });

export const page = t.Object({
  limit: t.Optional(pageLimit),
  cursor: t.Optional(ulidCursor),
});

export const apiKeyQuery = t.Object({
  limit: t.Optional(pageLimit),
  cursor: t.Optional(
    t.String({
      pattern: "^[0-9a-z]{16}$",
      description: "next_cursor of the previous page",
      [EXPECTED]: "Expected the next_cursor of a previous page",
    }),
  ),
  user_id: t.Optional(t.String({ maxLength: 64, description: "only this user's keys" })),
});

export const apiKey = t.Object({
  id: t.String(),
  tenant_id: t.String(),
  user_id: t.String(),
  name: t.String(),
  role,
  created_at: dateTime,
  last_used_at: t.Nullable(dateTime),
  revoked_at: t.Nullable(dateTime),
});

export const createApiKeyRequest = t.Object({
  name: t.String({ minLength: 1, maxLength: 100, format: PLAIN_TEXT }),
  role: t.Optional(role),
  user_id: t.Optional(t.String({ maxLength: 64, description: "owner; defaults to the caller" })),
});

export const createdApiKey = t.Object({
  api_key: t.String({ description: "wdn_<id>_<secret>, shown once" }),
  key: apiKey,
});

export const idParams = t.Object({ id: t.String({ maxLength: 64 }) });
