import { Elysia, t } from "elysia";
import { responseHeaders } from "../../lib/openapi-shape";
import { pageOf } from "../../lib/paging";
import { HttpProblem } from "../../lib/problem";
import { isoOrNull } from "../../lib/time";
import { ANY_ROLE, authPlugin, DEVELOPER } from "../../plugins/auth";
import { lean, leanPost } from "../../plugins/lean-routes";
import type { Security } from "../auth/setup";
import {
  type CreateNotificationRequest,
  createdNotification,
  createNotificationRequest,
  inboxItem,
  inboxQuery,
} from "./model";
import { type InboxRow, isoTime, MAX_UNREAD_COUNT, type NotificationRow, type NotificationService } from "./service";

const publicNotification = (n: Omit<InboxRow, "read_at"> | NotificationRow) => ({
  id: n.id,
  type: n.type,
  title: n.title,
  body: n.body,
  data: JSON.parse(n.data) as Record<string, unknown>,
  created_at: isoTime(n.created_at),
});

const publicInboxItem = (item: InboxRow) => ({ ...publicNotification(item), read_at: isoOrNull(item.read_at) });

const IDEMPOTENCY_KEY_MAX = 255;
const IDEMPOTENCY_KEY_PARAMETER = {
  in: "header" as const,
  name: "Idempotency-Key",
  required: false,
  description:
    "same key and body → same result; different body → 422. Scoped to the user: their sessions and API keys share one set of keys",
  schema: { type: "string" as const, minLength: 1, maxLength: IDEMPOTENCY_KEY_MAX, pattern: "^[^,]+$" },
};

/** Read by hand rather than through a headers schema, so the create can be served lean. */
function idempotencyKeyOf(request: Request): string | undefined {
  const key = request.headers.get("idempotency-key");
  if (key === null) return undefined;
  if (key.length === 0 || key.length > IDEMPOTENCY_KEY_MAX)
    throw invalidKey(`must be 1-${IDEMPOTENCY_KEY_MAX} characters`);
  // Two Idempotency-Key headers arrive joined by ", ": neither key would be honoured as sent.
  if (key.includes(",")) throw invalidKey("must be one key without commas (was the header sent twice?)");
  return key;
}

function invalidKey(message: string): HttpProblem {
  return new HttpProblem(422, "validation", `Invalid headers. idempotency-key: ${message}.`, {
    errors: [{ in: "header", field: "idempotency-key", message }],
  });
}

/** Creating notifications (developer, admin) and each user's own inbox (any role). */
export const notificationsModule = (deps: { security: Security; notifications: NotificationService }) => {
  const { notifications } = deps;
  // Polled by the UI: served by the lean path in front of Elysia (src/plugins/lean-routes.ts).
  const unreadCount = lean(ANY_ROLE, (principal) => notifications.unreadCount(principal));
  const create = leanPost(DEVELOPER, 201, async (principal, body: CreateNotificationRequest, context) => {
    const created = await notifications.create(principal, body, idempotencyKeyOf(context.request));
    if (created.replayed) context.headers["idempotent-replayed"] = "true";
    return {
      notification: publicNotification(created.notification),
      recipients: created.recipients,
      deliveries: created.deliveries,
    };
  });
  return new Elysia({ name: "notification-routes", tags: ["notifications"] })
    .use(authPlugin(deps.security.tokens, deps.security.audit))
    .post("/v1/notifications", create.handler, {
      auth: create.roles,
      body: createNotificationRequest,
      parse: ["json"],
      response: { 201: createdNotification },
      detail: {
        summary: "Send a notification",
        description:
          "Writes the notification, one inbox row per recipient and one webhook delivery per matching endpoint in one transaction. With an Idempotency-Key, the same key and body answer the first result again (Idempotent-Replayed: true); a different body is 422.",
        parameters: [IDEMPOTENCY_KEY_PARAMETER],
        ...responseHeaders(201, {
          "Idempotent-Replayed": {
            description: "`true` when this is the first result again, for a repeated Idempotency-Key",
            schema: { type: "string", enum: ["true"] },
          },
        }),
      },
    })
    .get(
      "/v1/notifications",
      ({ principal, query }) => {
        const limit = query.limit ?? 50;
        const rows = notifications.list(principal, {
          unread: query.unread,
          cursor: query.cursor,
          limit: limit + 1,
        });
        const { page, next_cursor } = pageOf(rows, limit);
        return { notifications: page.map(publicInboxItem), next_cursor };
      },
      {
        auth: ANY_ROLE,
        query: inboxQuery,
        response: t.Object({ notifications: t.Array(inboxItem), next_cursor: t.Nullable(t.String()) }),
        detail: { summary: "The caller's inbox, newest first" },
      },
    )
    .get("/v1/notifications/unread-count", unreadCount.handler, {
      auth: unreadCount.roles,
      response: t.Object({
        unread: t.Integer({ description: `exact up to ${MAX_UNREAD_COUNT}; beyond, ${MAX_UNREAD_COUNT}` }),
        capped: t.Boolean({
          description: `true when more than ${MAX_UNREAD_COUNT} are unread ("${MAX_UNREAD_COUNT}+")`,
        }),
      }),
      detail: { summary: "How many of the caller's notifications are unread (exact up to 99, then capped)" },
    })
    .post(
      "/v1/notifications/:id/read",
      async ({ principal, params }) => publicInboxItem(await notifications.markRead(principal, params.id)),
      {
        auth: ANY_ROLE,
        params: t.Object({ id: t.String({ maxLength: 64 }) }),
        response: inboxItem,
        detail: { summary: "Mark one of the caller's notifications read" },
      },
    )
    .post(
      "/v1/notifications/read-all",
      async ({ principal }) => ({ updated: await notifications.markAllRead(principal) }),
      {
        auth: ANY_ROLE,
        response: t.Object({ updated: t.Integer() }),
        detail: { summary: "Mark all of the caller's notifications read" },
      },
    );
};
