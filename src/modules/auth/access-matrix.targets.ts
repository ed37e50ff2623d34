/** What the access matrix's rows act on: tenant A's things, made fresh for each case. */
import { expect } from "bun:test";
import { type Member, TENANT_A, type Token, type World } from "../../testing/matrix";
import type { Spec } from "./access-matrix.rows";

let serial = 0;
/** A number no other case has used: names and ids that cannot collide. */
export const nextSerial = () => ++serial;

export async function previewed(w: World, admin: Member): Promise<string> {
  const res = await w.ctx.req("POST", "/v1/admin/revocations/preview", {
    body: { scope: "role", role: "viewer" },
    headers: (await w.token(admin)).auth,
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { confirm_token: string }).confirm_token;
}

/** A tenant-A feedback entry on a subject of its own: what the feedback reads must (not) show. */
export async function feedbackTarget(w: World): Promise<{ subject: string; id: string }> {
  const subject = `matrix-subject-${++serial}`;
  const { id } = await w.ctx.deps.feedback.accept(
    { tid: TENANT_A, sub: w.a.viewer.userId },
    { subject_type: "alert", subject_id: subject, verdict: "false_positive" },
  );
  return { subject, id };
}

export async function revocationTarget(w: World, body: (m: Member, t: Token) => object): Promise<Spec> {
  const member = w.freshMember("developer");
  const token = await w.token(member);
  return { path: "/v1/admin/revocations", body: body(member, token), witness: token.access };
}

export async function endpointOfA(w: World): Promise<string> {
  const res = await w.ctx.req("POST", "/v1/webhooks/endpoints", {
    body: { url: `http://127.0.0.1:9/matrix-${++serial}` },
    headers: (await w.token(w.a.admin)).auth,
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { endpoint: { id: string } }).endpoint.id;
}

/** A notification from A's developer to `recipient`; its id. */
export async function notificationFor(w: World, recipient: Member): Promise<string> {
  const res = await w.ctx.req("POST", "/v1/notifications", {
    body: { recipients: { user_ids: [recipient.userId] }, type: "matrix.test", title: `m${++serial}` },
    headers: (await w.token(w.a.developer)).auth,
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { notification: { id: string } }).notification.id;
}

/** A delivery of tenant A (to an endpoint nobody listens on), made dead so it can be retried. */
export async function deadDeliveryOfA(w: World): Promise<string> {
  await endpointOfA(w);
  const notification = await notificationFor(w, w.a.viewer);
  const sqlite = w.ctx.deps.db.$client;
  const row = sqlite
    .query<{ id: string }, [string]>("SELECT id FROM webhook_deliveries WHERE notification_id = ? LIMIT 1")
    .get(notification);
  if (!row) throw new Error("no delivery");
  sqlite.query("UPDATE webhook_deliveries SET status = 'dead' WHERE id = ?").run(row.id);
  return row.id;
}
