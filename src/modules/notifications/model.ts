import { t } from "elysia";
import { EXPECTED, PLAIN_TEXT } from "../../lib/formats";
import { documentedAs } from "../../lib/openapi-shape";
import { dateTime, pageLimit, role, ulidCursor } from "../auth/model";

// The example is what Swagger UI fills in: one the service accepts (an admin exists in every
// tenant), where the generated one named a user id no tenant has.
export const createNotificationRequest = t.Object(
  {
    recipients: t.Object(
      {
        user_ids: t.Optional(t.Array(t.String({ maxLength: 64 }), { minItems: 1, maxItems: 1000 })),
        role: t.Optional(role),
      },
      { description: "user ids of the tenant, every active user of a role, or both" },
    ),
    type: t.String({
      minLength: 1,
      maxLength: 100,
      pattern: "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
      description: "dotted event type, e.g. alert.fired; webhook endpoints filter on it",
      [EXPECTED]: "Expected a dotted event type of letters, digits, _ and - (alert.fired)",
    }),
    title: t.String({ minLength: 1, maxLength: 200, format: PLAIN_TEXT }),
    body: t.Optional(t.String({ maxLength: 10_000, format: PLAIN_TEXT })),
    // Checked by the service: Elysia would coerce an array into an object here.
    data: t.Optional(
      t.Unknown({
        description: "a JSON object of your own, size-limited (413 beyond)",
        ...documentedAs({ type: "object", additionalProperties: true }),
      }),
    ),
  },
  {
    examples: [
      {
        recipients: { role: "admin" },
        type: "alert.fired",
        title: "Disk almost full",
        body: "db-1 has 5% free",
        data: { host: "db-1" },
      },
    ],
  },
);

export type CreateNotificationRequest = typeof createNotificationRequest.static;

export const notification = t.Object({
  id: t.String(),
  type: t.String(),
  title: t.String(),
  body: t.String(),
  data: t.Record(t.String(), t.Unknown()),
  created_at: dateTime,
});

export const createdNotification = t.Object({
  notification,
  recipients: t.Integer({ description: "inbox rows written" }),
  deliveries: t.Integer({ description: "webhook deliveries queued" }),
});

export const inboxItem = t.Composite([notification, t.Object({ read_at: t.Nullable(dateTime) })]);

export const inboxQuery = t.Object({
  unread: t.Optional(t.Boolean({ description: "true: only unread items; false: only read ones; absent: both" })),
  cursor: t.Optional(ulidCursor),
  limit: t.Optional(pageLimit),
});
