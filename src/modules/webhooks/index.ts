import { Elysia, t } from "elysia";
import type { Role } from "../../../db/schema";
import { pageOf } from "../../lib/paging";
import { isoOrNull } from "../../lib/time";
import { ADMIN, authPlugin, DEVELOPER } from "../../plugins/auth";
import { requestMetaOf } from "../../plugins/request-context";
import { JSON_OR_FORM } from "../../plugins/request-guards";
import type { Security } from "../auth/setup";
import type { DeliveryRow } from "./deliveries";
import { type EndpointRow, originOnly, PARKED } from "./endpoints";
import {
  attempt,
  createEndpointRequest,
  delivery,
  deliveryQuery,
  endpoint,
  endpointPage,
  endpointWithSecret,
  idParams,
  replayRequest,
  rotateSecretRequest,
  SECRET_OVERLAP_SECONDS,
  stats,
  updateEndpointRequest,
} from "./model";
import type { Webhooks } from "./setup";

export const publicEndpoint = (row: EndpointRow, viewer: Role = "admin") => ({
  id: row.id,
  url: viewer === "admin" ? row.url : originOnly(new URL(row.url)),
  description: row.description,
  event_types: row.event_types === null ? [] : (JSON.parse(row.event_types) as string[]),
  created_at: new Date(row.created_at).toISOString(),
  disabled_at: isoOrNull(row.disabled_at),
  disabled_reason: row.disabled_reason,
  previous_secret_expires_at: isoOrNull(row.previous_secret_expires_at),
});

export const publicDelivery = (row: DeliveryRow) => ({
  id: row.id,
  endpoint_id: row.endpoint_id,
  notification_id: row.notification_id,
  webhook_id: `msg_${row.notification_id}`,
  event_type: row.event_type,
  status: row.status,
  attempts: row.attempts,
  next_attempt_at:
    (row.status === "pending" || row.status === "failed") && row.due_at !== PARKED ? isoOrNull(row.due_at) : null,
  created_at: new Date(row.created_at).toISOString(),
  last_attempt_at: isoOrNull(row.last_attempt_at),
  last_status_code: row.last_status_code,
  last_error: row.last_error,
  delivered_at: isoOrNull(row.delivered_at),
});

/** Webhook endpoints (admins change them, developers read them) and delivery operations. */
export const webhooksModule = (deps: { security: Security; webhooks: Webhooks }) => {
  const { endpoints, deliveries } = deps.webhooks;
  return new Elysia({ name: "webhook-routes", tags: ["webhooks"] })
    .use(authPlugin(deps.security.tokens, deps.security.audit))
    .post(
      "/v1/webhooks/endpoints",
      async ({ principal, body, request, server, set }) => {
        const created = await endpoints.create(principal, body, requestMetaOf(request, set, server));
        set.status = 201;
        return { endpoint: publicEndpoint(created.endpoint), secret: created.secret };
      },
      {
        auth: ADMIN,
        body: createEndpointRequest,
        parse: JSON_OR_FORM,
        response: { 201: endpointWithSecret },
        detail: {
          summary: "Register a webhook endpoint",
          description:
            "Returns the signing secret (whsec_…) once. Deliveries carry Standard Webhooks headers: webhook-id, webhook-timestamp, webhook-signature. 409 `too-many-endpoints` when the tenant already has WEBHOOK_MAX_ENDPOINTS (20 by default).",
        },
      },
    )
    .get(
      "/v1/webhooks/endpoints",
      ({ principal, query }) => {
        const limit = query.limit ?? 50;
        const rows = endpoints.list(principal.tid, { limit: limit + 1, before: query.cursor });
        const { page, next_cursor } = pageOf(rows, limit);
        return { endpoints: page.map((row) => publicEndpoint(row, principal.role)), next_cursor };
      },
      {
        auth: DEVELOPER,
        query: endpointPage,
        response: t.Object({ endpoints: t.Array(endpoint), next_cursor: t.Nullable(t.String()) }),
        detail: { summary: "List webhook endpoints, newest first" },
      },
    )
    .get(
      "/v1/webhooks/endpoints/:id",
      ({ principal, params }) => publicEndpoint(endpoints.get(principal.tid, params.id), principal.role),
      {
        auth: DEVELOPER,
        params: idParams,
        response: endpoint,
        detail: { summary: "One webhook endpoint" },
      },
    )
    .patch(
      "/v1/webhooks/endpoints/:id",
      async ({ principal, params, body, request, server, set }) =>
        publicEndpoint(await endpoints.update(principal, params.id, body, requestMetaOf(request, set, server))),
      {
        auth: ADMIN,
        params: idParams,
        body: updateEndpointRequest,
        parse: JSON_OR_FORM,
        response: endpoint,
        detail: {
          summary: "Change an endpoint's URL, description or event types",
          description:
            "Only the fields sent change. The secret, the enabled state and waiting deliveries stay; those go to the new URL from their next attempt.",
        },
      },
    )
    .delete(
      "/v1/webhooks/endpoints/:id",
      ({ principal, params, request, server, set }) => {
        endpoints.delete(principal, params.id, requestMetaOf(request, set, server));
        set.status = 204;
      },
      {
        auth: ADMIN,
        params: idParams,
        detail: {
          summary: "Delete a webhook endpoint",
          description: "Deliveries still waiting for it become dead.",
          responses: { 204: { description: "The endpoint is deleted" } },
        },
      },
    )
    .post(
      "/v1/webhooks/endpoints/:id/rotate-secret",
      async ({ principal, params, body, request, server, set }) => {
        const overlap = body?.previous_secret_overlap_seconds ?? SECRET_OVERLAP_SECONDS;
        const meta = requestMetaOf(request, set, server);
        const rotated = await endpoints.rotateSecret(principal, params.id, overlap, meta);
        return { endpoint: publicEndpoint(rotated.endpoint), secret: rotated.secret };
      },
      {
        auth: ADMIN,
        params: idParams,
        body: rotateSecretRequest,
        response: endpointWithSecret,
        detail: {
          summary: "Rotate an endpoint's signing secret",
          description:
            "The new secret signs from now on; the one it replaces keeps signing alongside (space-separated signatures) for `previous_secret_overlap_seconds`, 24 hours unless the body says less (0: not at all, for a secret that leaked). Rotating again within them replaces that one: at most two secrets sign at a time. The body is optional.",
        },
      },
    )
    .post(
      "/v1/webhooks/endpoints/:id/disable",
      ({ principal, params, request, server, set }) =>
        publicEndpoint(endpoints.setDisabled(principal, params.id, true, requestMetaOf(request, set, server))),
      {
        auth: ADMIN,
        params: idParams,
        response: endpoint,
        detail: { summary: "Stop delivering to an endpoint", description: "Deliveries wait until it is enabled." },
      },
    )
    .post(
      "/v1/webhooks/endpoints/:id/enable",
      ({ principal, params, request, server, set }) =>
        publicEndpoint(endpoints.setDisabled(principal, params.id, false, requestMetaOf(request, set, server))),
      {
        auth: ADMIN,
        params: idParams,
        response: endpoint,
        detail: { summary: "Resume delivering to an endpoint", description: "Waiting deliveries are sent at once." },
      },
    )
    .post(
      "/v1/webhooks/endpoints/:id/replay",
      async ({ principal, params, body, request, server, set }) =>
        await deliveries.replay(principal, params.id, Date.parse(body.since), requestMetaOf(request, set, server)),
      {
        auth: ADMIN,
        params: idParams,
        body: replayRequest,
        parse: JSON_OR_FORM,
        response: t.Object({
          replayed: t.Integer({ description: "deliveries queued again" }),
          complete: t.Boolean({
            description: "false when the endpoint was disabled or deleted before the replay finished",
          }),
        }),
        detail: {
          summary: "Send an endpoint's deliveries since a time again",
          description:
            "Same webhook-id and body bytes, fresh timestamp and signature, a fresh retry schedule. Delivered, failed and dead deliveries are queued again (pending and leased ones are on their way already); 409 while the endpoint is disabled.",
        },
      },
    )
    .get(
      "/v1/webhooks/deliveries",
      ({ principal, query }) => {
        const limit = query.limit ?? 50;
        const rows = deliveries.list(principal.tid, {
          status: query.status,
          endpointId: query.endpoint_id,
          cursor: query.cursor,
          limit: limit + 1,
        });
        const { page, next_cursor } = pageOf(rows, limit);
        return { deliveries: page.map(publicDelivery), next_cursor };
      },
      {
        auth: DEVELOPER,
        query: deliveryQuery,
        response: t.Object({ deliveries: t.Array(delivery), next_cursor: t.Nullable(t.String()) }),
        detail: { summary: "Deliveries, newest first, by status and endpoint" },
      },
    )
    .get(
      "/v1/webhooks/deliveries/:id",
      ({ principal, params }) => {
        const found = deliveries.get(principal.tid, params.id);
        return {
          delivery: publicDelivery(found.delivery),
          attempts: found.attempts.map((a) => ({ ...a, attempted_at: new Date(a.attempted_at).toISOString() })),
        };
      },
      {
        auth: DEVELOPER,
        params: idParams,
        response: t.Object({ delivery, attempts: t.Array(attempt) }),
        detail: { summary: "One delivery and every attempt made" },
      },
    )
    .post(
      "/v1/webhooks/deliveries/:id/retry",
      ({ principal, params, request, server, set }) => {
        set.status = 202;
        return publicDelivery(deliveries.retry(principal, params.id, requestMetaOf(request, set, server)));
      },
      {
        auth: ADMIN,
        params: idParams,
        response: { 202: delivery },
        detail: { summary: "Retry a failed or dead delivery now" },
      },
    )
    .get("/v1/webhooks/stats", ({ principal }) => deliveries.stats(principal.tid), {
      auth: DEVELOPER,
      response: stats,
      detail: {
        summary: "Queue depth by status and the success rate of the last 24 hours",
        description:
          "`queue`: every delivery waiting (pending, leased, failed), those of the last 24 hours delivered (by when they were made, nearly always when they were delivered) and dead (by their last attempt); `attempts_24h` and `success_rate_24h` over the attempts of the last 24 hours.",
      },
    });
};
