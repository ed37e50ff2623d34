import type { Database, Statement } from "bun:sqlite";
import type { Role } from "../../../db/schema";
import { canonicalJson } from "../../lib/canonical-json";
import type { Clock } from "../../lib/clock";
import { HttpProblem, invalidField, notFound } from "../../lib/problem";
import { sha256Hex, ulid } from "../../lib/secrets";
import { TtlCache } from "../../lib/ttl-cache";
import type { WriteBatcher } from "../../lib/write-batcher";
import type { Principal } from "../../plugins/auth";
import type { EndpointService } from "../webhooks/endpoints";
import { NotificationWriter } from "./writer";

export const MAX_RECIPIENTS = 1000;
/** The unread count is exact up to here; beyond, it says this many and `capped` (a badge reads "99+"). */
export const MAX_UNREAD_COUNT = 99;

export interface NotificationInput {
  recipients: { user_ids?: string[]; role?: Role };
  type: string;
  title: string;
  body?: string;
  data?: unknown;
}

export interface NotificationRow {
  id: string;
  tenant_id: string;
  type: string;
  title: string;
  body: string;
  data: string;
  created_by: string;
  created_at: number;
  idempotency_key: string | null;
  request_hash: string | null;
}

export interface InboxRow {
  id: string;
  type: string;
  title: string;
  body: string;
  data: string;
  created_at: number;
  read_at: number | null;
}

export interface Created {
  notification: NotificationRow;
  recipients: number;
  deliveries: number;
  /** True when an Idempotency-Key matched an earlier request and nothing new was written. */
  replayed: boolean;
}

const INBOX_COLUMNS = "n.id, n.type, n.title, n.body, n.data, n.created_at, i.read_at";

/**
 * Notifications: one transaction writes the notification, an inbox row per recipient and a
 * delivery row per matching webhook endpoint (the outbox), then the dispatcher is woken.
 */
export class NotificationService {
  private readonly sql: ReturnType<typeof prepare>;
  private readonly writer: NotificationWriter;
  /**
   * Whether a user is active, and who holds a role, per tenant: emptied when this process changes a
   * user (`forgetUsers`); a change made by another process (the CLI) shows within a second.
   */
  private readonly activeUsers = new TtlCache<string, boolean>(1000);
  private readonly roleHolders = new TtlCache<string, string[]>(1000);

  constructor(
    sqlite: Database,
    private readonly clock: Clock,
    private readonly batcher: WriteBatcher,
    private readonly endpoints: EndpointService,
    private readonly options: { dataMaxBytes: number; onAccepted: (deliveries: number) => void },
  ) {
    this.sql = prepare(sqlite);
    this.writer = new NotificationWriter(sqlite, batcher);
  }

  async create(principal: Principal, input: NotificationInput, idempotencyKey?: string): Promise<Created> {
    const given = input.data;
    if (given !== undefined && (typeof given !== "object" || given === null || Array.isArray(given)))
      throw invalidField("data", "data must be a JSON object.");
    const data = JSON.stringify(input.data ?? {});
    if (Buffer.byteLength(data) > this.options.dataMaxBytes) {
      throw new HttpProblem(413, "too-large", `data is larger than ${this.options.dataMaxBytes} bytes.`, {
        errors: [{ in: "body", field: "data", message: `at most ${this.options.dataMaxBytes} bytes of JSON` }],
      });
    }
    const requestHash = idempotencyKey === undefined ? null : sha256Hex(canonicalJson(input));
    if (idempotencyKey !== undefined) {
      const earlier = this.replay(principal, idempotencyKey, requestHash);
      if (earlier) return earlier;
    }
    const recipients = this.resolveRecipients(principal.tid, input.recipients);
    const receivers = this.endpoints.receiversOf(principal.tid, input.type);
    const now = this.clock.now();
    const notification: NotificationRow = {
      id: ulid(now),
      tenant_id: principal.tid,
      type: input.type,
      title: input.title,
      body: input.body ?? "",
      data,
      created_by: principal.sub,
      created_at: now,
      idempotency_key: idempotencyKey ?? null,
      request_hash: requestHash,
    };
    const payload = receivers.length > 0 ? webhookPayload(notification) : "";
    const deliveries = receivers.map((endpointId) => ({ id: ulid(now), endpointId }));
    try {
      await this.writer.write({ notification, recipients, deliveries, payload });
    } catch (error) {
      // Two requests with one key raced; the other committed first.
      const earlier = idempotencyKey === undefined ? undefined : this.replay(principal, idempotencyKey, requestHash);
      if (earlier) return earlier;
      throw error;
    }
    this.options.onAccepted(receivers.length);
    return { notification, recipients: recipients.length, deliveries: receivers.length, replayed: false };
  }

  /** A user was created, disabled or enabled: who is active must be read again. */
  forgetUsers(): void {
    this.activeUsers.clear();
    this.roleHolders.clear();
  }

  /** `unread`: true for unread items only, false for read ones only, undefined for both. */
  list(principal: Principal, options: { unread?: boolean; cursor?: string; limit: number }): InboxRow[] {
    const cursor = options.cursor ?? "\uffff";
    const page =
      options.unread === undefined ? this.sql.inboxPage : options.unread ? this.sql.unreadPage : this.sql.readPage;
    return page.all(principal.sub, principal.tid, cursor, options.limit);
  }

  /**
   * Exact up to MAX_UNREAD_COUNT, then capped: counting is a walk of the caller's unread index
   * entries, and a polled endpoint must not cost more for a user someone sent 100 000 notifications.
   */
  unreadCount(principal: Principal): { unread: number; capped: boolean } {
    const n = this.sql.unreadCount.get(principal.sub, principal.tid, MAX_UNREAD_COUNT + 1)?.n ?? 0;
    return { unread: Math.min(n, MAX_UNREAD_COUNT), capped: n > MAX_UNREAD_COUNT };
  }

  async markRead(principal: Principal, id: string): Promise<InboxRow> {
    await this.batcher.run(() => this.sql.markRead.run(this.clock.now(), principal.sub, principal.tid, id));
    const item = this.sql.inboxItem.get(principal.sub, principal.tid, id);
    if (!item) throw notFound("No notification with this id in your inbox.");
    return item;
  }

  async markAllRead(principal: Principal): Promise<number> {
    return this.batcher.run(() => this.sql.markAllRead.run(this.clock.now(), principal.sub, principal.tid).changes);
  }

  private replay(principal: Principal, key: string, requestHash: string | null): Created | undefined {
    const earlier = this.sql.byIdempotencyKey.get(principal.tid, principal.sub, key);
    if (!earlier) return undefined;
    if (earlier.request_hash !== requestHash) {
      throw new HttpProblem(
        422,
        "idempotency-key-reused",
        "This Idempotency-Key was used with a different request body.",
        { errors: [{ in: "header", field: "idempotency-key", message: "already used for a different body" }] },
      );
    }
    const counts = this.sql.countsOf.get(earlier.id, earlier.id);
    return { notification: earlier, recipients: counts?.r ?? 0, deliveries: counts?.d ?? 0, replayed: true };
  }

  private resolveRecipients(tenantId: string, recipients: NotificationInput["recipients"]): string[] {
    const { user_ids: userIds, role } = recipients;
    if (userIds === undefined && role === undefined)
      throw invalidField("recipients", "Name recipients by user_ids, role, or both.");
    const now = this.clock.now();
    // The common case, one named user, without the sets below.
    if (role === undefined && userIds?.length === 1) {
      const id = userIds[0] as string;
      if (!this.isActive(tenantId, id, now)) throw unknownUsers([id]);
      return [id];
    }
    const chosen = new Set<string>();
    if (userIds) {
      const unknown: string[] = [];
      for (const id of new Set(userIds)) {
        if (this.isActive(tenantId, id, now)) chosen.add(id);
        else unknown.push(id);
      }
      if (unknown.length > 0) throw unknownUsers(unknown);
    }
    if (role) {
      const holders = this.roleHolders.get(`${tenantId}/${role}`, now, () =>
        this.sql.usersWithRole.all(tenantId, role).map((row) => row.id),
      );
      for (const id of holders) chosen.add(id);
    }
    if (chosen.size === 0) throw invalidField("recipients", "No active user matches these recipients.");
    if (chosen.size > MAX_RECIPIENTS)
      throw invalidField("recipients", `At most ${MAX_RECIPIENTS} recipients per notification.`);
    return [...chosen];
  }

  private isActive(tenantId: string, userId: string, now: number): boolean {
    return this.activeUsers.get(`${tenantId}/${userId}`, now, () => Boolean(this.sql.activeUser.get(tenantId, userId)));
  }
}

/** Another tenant's user looks exactly like one that does not exist. */
function unknownUsers(ids: string[]): HttpProblem {
  return invalidField("recipients.user_ids", `No active user of this tenant has the id ${ids.join(", ")}.`);
}

/** The Standard Webhooks body: stored once per delivery, so every attempt sends these exact bytes. */
export function webhookPayload(n: NotificationRow): string {
  // Exactly JSON.stringify of {type, timestamp, data: {id, tenant_id, type, title, body, data,
  // created_at}}, written out: `data` is already JSON and the dates are plain ASCII.
  const at = isoTime(n.created_at);
  const type = JSON.stringify(n.type);
  return `{"type":${type},"timestamp":"${at}","data":{"id":${JSON.stringify(n.id)},"tenant_id":${JSON.stringify(n.tenant_id)},"type":${type},"title":${JSON.stringify(n.title)},"body":${JSON.stringify(n.body)},"data":${n.data},"created_at":"${at}"}}`;
}

let isoAt = Number.NaN;
let iso = "";

/** Notifications made in the same millisecond share one ISO string (payload and answer alike). */
export function isoTime(ms: number): string {
  if (ms !== isoAt) {
    iso = new Date(ms).toISOString();
    isoAt = ms;
  }
  return iso;
}

function prepare(sqlite: Database) {
  return {
    byIdempotencyKey: sqlite.query(
      "SELECT * FROM notifications WHERE tenant_id = ? AND created_by = ? AND idempotency_key = ?",
    ) as Statement<NotificationRow, [string, string, string]>,
    countsOf: sqlite.query(
      `SELECT (SELECT count(*) FROM inbox_items WHERE notification_id = ?) AS r,
              (SELECT count(*) FROM webhook_deliveries WHERE notification_id = ?) AS d`,
    ) as Statement<{ r: number; d: number }, [string, string]>,
    activeUser: sqlite.query(
      "SELECT id FROM users WHERE tenant_id = ? AND id = ? AND disabled_at IS NULL",
    ) as Statement<{ id: string }, [string, string]>,
    usersWithRole: sqlite.query(
      "SELECT id FROM users WHERE tenant_id = ? AND role = ? AND disabled_at IS NULL",
    ) as Statement<{ id: string }, [string, string]>,
    inboxPage: sqlite.query(
      `SELECT ${INBOX_COLUMNS} FROM inbox_items i JOIN notifications n ON n.id = i.notification_id
       WHERE i.user_id = ? AND i.tenant_id = ? AND i.notification_id < ? ORDER BY i.notification_id DESC LIMIT ?`,
    ) as Statement<InboxRow, [string, string, string, number]>,
    unreadPage: sqlite.query(
      `SELECT ${INBOX_COLUMNS} FROM inbox_items i JOIN notifications n ON n.id = i.notification_id
       WHERE i.user_id = ? AND i.tenant_id = ? AND i.read_at IS NULL AND i.notification_id < ?
       ORDER BY i.notification_id DESC LIMIT ?`,
    ) as Statement<InboxRow, [string, string, string, number]>,
    readPage: sqlite.query(
      `SELECT ${INBOX_COLUMNS} FROM inbox_items i JOIN notifications n ON n.id = i.notification_id
       WHERE i.user_id = ? AND i.tenant_id = ? AND i.read_at IS NOT NULL AND i.notification_id < ?
       ORDER BY i.notification_id DESC LIMIT ?`,
    ) as Statement<InboxRow, [string, string, string, number]>,
    inboxItem: sqlite.query(
      `SELECT ${INBOX_COLUMNS} FROM inbox_items i JOIN notifications n ON n.id = i.notification_id
       WHERE i.user_id = ? AND i.tenant_id = ? AND i.notification_id = ?`,
    ) as Statement<InboxRow, [string, string, string]>,
    unreadCount: sqlite.query(
      `SELECT count(*) AS n FROM (
         SELECT 1 FROM inbox_items WHERE user_id = ? AND tenant_id = ? AND read_at IS NULL LIMIT ?)`,
    ) as Statement<{ n: number }, [string, string, number]>,
    markRead: sqlite.query(
      "UPDATE inbox_items SET read_at = ? WHERE user_id = ? AND tenant_id = ? AND notification_id = ? AND read_at IS NULL",
    ),
    markAllRead: sqlite.query(
      "UPDATE inbox_items SET read_at = ? WHERE user_id = ? AND tenant_id = ? AND read_at IS NULL",
    ),
  };
}
