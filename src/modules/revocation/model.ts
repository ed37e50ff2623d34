import { t } from "elysia";
import { EXPECTED } from "../../lib/formats";
import { dateTime, pageLimit, role } from "../auth/model";

export const revokeRequest = t.Object(
  {
    // Printable ASCII without spaces: what a token id is (ours are ULIDs), so no junk row is kept.
    jti: t.Optional(
      t.String({
        minLength: 1,
        maxLength: 128,
        pattern: "^[!-~]+$",
        [EXPECTED]: "Expected printable ASCII without spaces",
      }),
    ),
    user_id: t.Optional(t.String({ minLength: 1, maxLength: 64 })),
    session_id: t.Optional(t.String({ minLength: 1, maxLength: 64 })),
  },
  { description: "Exactly one of jti, user_id or session_id" },
);

export type RevokeRequest = typeof revokeRequest.static;

export const revoked = t.Object({
  kind: t.Union([t.Literal("token"), t.Literal("user"), t.Literal("session")]),
  id: t.String(),
});

export const revocationEntry = t.Object({
  kind: t.Union([t.Literal("token"), t.Literal("session"), t.Literal("user"), t.Literal("tenant")]),
  subject: t.String(),
  reason: t.String(),
  revoked_at: dateTime,
  expires_at: dateTime,
});

export const revocationList = t.Object({ revocations: t.Array(revocationEntry), next_cursor: t.Nullable(t.String()) });

export const listQuery = t.Object({
  limit: t.Optional(pageLimit),
  // The time and subject of a page's last row, base64url: a jti of 128 characters makes ~200.
  cursor: t.Optional(t.String({ maxLength: 256, description: "opaque; from next_cursor" })),
});

export const previewRequest = t.Object({
  scope: t.Union([t.Literal("tenant"), t.Literal("role")]),
  role: t.Optional(role),
});

export const preview = t.Object({
  scope: t.Union([t.Literal("tenant"), t.Literal("role")]),
  role: t.Optional(role),
  affected: t.Object({ users: t.Integer(), sessions: t.Integer() }),
  confirm_token: t.String(),
  expires_at: dateTime,
});

export const confirmRequest = t.Object({ confirm_token: t.String({ minLength: 1, maxLength: 2048 }) });

export const confirmed = t.Object({ revoked: t.Object({ users: t.Integer(), sessions: t.Integer() }) });
