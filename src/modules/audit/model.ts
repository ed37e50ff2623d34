import { t } from "elysia";
import { EXPECTED } from "../../lib/formats";
import { dateTime, oneOf } from "../auth/model";

export const auditQuery = t.Object({
  actor: t.Optional(
    t.String({
      maxLength: 128,
      description: "actor id: a user's or an API key's, `cli`, or a process of the service such as `dispatcher`",
    }),
  ),
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
  // One of a list, not a union of literals: the document generator drops a union's description.
  outcome: t.Optional(
    oneOf(["success", "failure", "denied"], {
      description: "success, failure (a sign-in that failed) or denied (a request refused for its role or X-Client-ID)",
    }),
  ),
  from: t.Optional(t.String({ format: "date-time", description: "inclusive" })),
  to: t.Optional(t.String({ format: "date-time", description: "exclusive" })),
});

export const listQuery = t.Composite([
  auditQuery,
  t.Object({
    limit: t.Optional(
      t.Integer({
        minimum: 1,
        maximum: 200,
        default: 50,
        // A page scans a bounded window of the trail, which may hold fewer matching events.
        description: "the most events a page holds; a page may hold fewer, even none, and still have a next_cursor",
      }),
    ),
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
