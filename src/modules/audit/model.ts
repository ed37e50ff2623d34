import { t } from "elysia";
import { EXPECTED } from "../../lib/formats";
import { dateTime } from "../auth/model";

export const auditQuery = t.Object({
  actor: t.Optional(t.String({ maxLength: 128, description: "actor id (user, API key or `cli`)" })),
  action: t.Optional(
    t.String({
      maxLength: 64,
      // Dot-separated segments, as every action is named: "." or "auth..login" could match nothing.
      pattern: "^[a-z0-9_]+(\\.[a-z0-9_]+)*\\.?$",
      description: "an action (`auth.login`, and its `auth.login.*` children) or, ending in a dot, a prefix (`token.`)",
      [EXPECTED]: "Expected an action such as auth.login or, ending in a dot, a prefix such as token.",
    }),
  ),
  target: t.Optional(t.String({ maxLength: 128, description: "target id" })),
  outcome: t.Optional(t.Union([t.Literal("success"), t.Literal("failure"), t.Literal("denied")])),
  from: t.Optional(t.String({ format: "date-time", description: "inclusive" })),
  to: t.Optional(t.String({ format: "date-time", description: "exclusive" })),
});

export const listQuery = t.Composite([
  auditQuery,
  t.Object({
    limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: t.Optional(t.Integer({ minimum: 1, description: "from next_cursor: events older than this seq" })),
  }),
]);

const party = t.Object({ type: t.String(), id: t.Nullable(t.String()) });

export const auditEvent = t.Object({
  seq: t.Integer(),
  id: t.String(),
  ts: dateTime,
  tenant_id: t.Nullable(t.String()),
  actor: party,
  action: t.String(),
  target: t.Nullable(party),
  outcome: t.String(),
  reason: t.Nullable(t.String()),
  ip: t.Nullable(t.String()),
  user_agent: t.Nullable(t.String()),
  request_id: t.Nullable(t.String()),
  params: t.Record(t.String(), t.Unknown()),
  params_hash: t.String(),
  prev_hash: t.String(),
  hash: t.String(),
});

export const auditPage = t.Object({ events: t.Array(auditEvent), next_cursor: t.Nullable(t.Integer()) });

export const chainReport = t.Object({
  ok: t.Boolean(),
  checked: t.Integer(),
  from: t.Integer({ description: "the chain starts after this seq (0, or the last archived event)" }),
  broken_at: t.Optional(t.Integer()),
  reason: t.Optional(t.String()),
  head: t.Optional(t.Object({ seq: t.Integer(), hash: t.String() })),
});
