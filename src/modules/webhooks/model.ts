import { t } from "elysia";
import { DELIVERY_STATUSES } from "../../../db/schema";
import { EXPECTED, PLAIN_TEXT } from "../../lib/formats";
import { dateTime, oneOf, pageLimit, ulidCursor } from "../auth/model";

/** How long, at most and by default, the previous secret keeps signing after a rotation. */
export const SECRET_OVERLAP_SECONDS = 24 * 3600;

const eventType = t.String({
  minLength: 1,
  maxLength: 100,
  pattern: "^(\\*|[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*(\\.\\*)?)$",
  description: "an event type such as alert.fired, a prefix such as alert.*, or *",
  [EXPECTED]: "Expected an event type such as alert.fired, a prefix such as alert.*, or *",
});

export const createEndpointRequest = t.Object({
  url: t.String({ minLength: 1, maxLength: 2048, description: "http(s) receiver; no credentials in the URL" }),
  description: t.Optional(t.String({ maxLength: 500, format: PLAIN_TEXT })),
  event_types: t.Optional(
    t.Array(eventType, { maxItems: 50, description: "notification types to receive; omit or [] for every type" }),
  ),
});

export const updateEndpointRequest = t.Object(
  {
    url: t.Optional(createEndpointRequest.properties.url),
    description: t.Optional(createEndpointRequest.properties.description),
    event_types: t.Optional(
      t.Array(eventType, { maxItems: 50, description: "replaces the filter: [] for every type; omit to keep it" }),
    ),
  },
  { minProperties: 1, description: "only what is sent changes; at least one field" },
);

export const endpointPage = t.Object({
  limit: t.Optional(pageLimit),
  cursor: t.Optional(ulidCursor),
});

export const endpoint = t.Object({
  id: t.String(),
  url: t.String({
    description:
      "to non-admins, its origin only, followed by /… when it has a path or query (either may hold the receiver's token)",
  }),
  description: t.String(),
  event_types: t.Array(t.String()),
  created_at: dateTime,
  disabled_at: t.Nullable(dateTime),
  disabled_reason: t.Nullable(t.String()),
  previous_secret_expires_at: t.Nullable(dateTime),
});

export const rotateSecretRequest = t.Optional(
  t.Object(
    {
      previous_secret_overlap_seconds: t.Optional(
        t.Integer({
          minimum: 0,
          maximum: SECRET_OVERLAP_SECONDS,
          default: SECRET_OVERLAP_SECONDS,
          description:
            "how long the secret being replaced keeps signing alongside the new one; 0 stops it at once (a leaked secret)",
        }),
      ),
    },
    { additionalProperties: false },
  ),
);

export const endpointWithSecret = t.Object({
  endpoint,
  secret: t.String({ description: "whsec_… — shown once; verify our signatures with it" }),
});

export const deliveryStatus = oneOf(DELIVERY_STATUSES);

export const delivery = t.Object({
  id: t.String(),
  endpoint_id: t.String(),
  notification_id: t.String(),
  webhook_id: t.String({ description: "the webhook-id header receivers deduplicate on" }),
  event_type: t.String(),
  status: deliveryStatus,
  attempts: t.Integer({
    description: "attempts in its current schedule (a replay starts a new one); the attempt log has every one",
  }),
  next_attempt_at: t.Nullable(dateTime),
  created_at: dateTime,
  last_attempt_at: t.Nullable(dateTime),
  last_status_code: t.Nullable(t.Integer()),
  last_error: t.Nullable(t.String()),
  delivered_at: t.Nullable(dateTime),
});

export const attempt = t.Object({
  attempted_at: dateTime,
  duration_ms: t.Integer(),
  status_code: t.Nullable(t.Integer()),
  outcome: t.String(),
  error: t.Nullable(t.String()),
});

export const deliveryQuery = t.Object({
  status: t.Optional(
    oneOf(DELIVERY_STATUSES, {
      description:
        "only deliveries in this state: pending (waiting for its next attempt: the first, or one asked for by a retry or a replay), leased (in flight, or a lease that ran out, to be taken again), failed (waiting for a scheduled retry, or parked while its endpoint is disabled), delivered or dead",
    }),
  ),
  endpoint_id: t.Optional(t.String({ maxLength: 64, description: "only this endpoint's deliveries" })),
  cursor: t.Optional(ulidCursor),
  limit: t.Optional(pageLimit),
});

export const replayRequest = t.Object({
  since: t.String({ format: "date-time", description: "replay deliveries created at or after this time" }),
});

export const stats = t.Object({
  queue: t.Record(t.String(), t.Integer()),
  attempts_24h: t.Integer(),
  success_rate_24h: t.Nullable(t.Number()),
});

export const idParams = t.Object({ id: t.String({ maxLength: 64 }) });
