import type { Statement } from "bun:sqlite";
import type { Db } from "../../../db/client";
import type { Clock } from "../../lib/clock";
import { HttpProblem, notFound } from "../../lib/problem";
import { open, seal } from "../../lib/sealed-box";
import { sha256Hex, ulid } from "../../lib/secrets";
import { TtlCache } from "../../lib/ttl-cache";
import type { Principal } from "../../plugins/auth";
import type { RequestMeta } from "../../plugins/request-context";
import { AuditAction, type AuditActionName } from "../audit/actions";
import { type AuditHook, callerEvent, type SecurityEvent } from "../audit/hook";
import { newWebhookSecret, secretBytes } from "./signing";
import { assertPublicDestination, parseEndpointUrl } from "./url-policy";

/** `due_at` of deliveries whose endpoint is disabled: never due until it is enabled again. */
export const PARKED = Number.MAX_SAFE_INTEGER;

export interface EndpointRow {
  id: string;
  tenant_id: string;
  url: string;
  description: string;
  event_types: string | null;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: number | null;
  created_at: number;
  disabled_at: number | null;
  disabled_reason: string | null;
  deleted_at: number | null;
}

export interface EndpointInput {
  url: string;
  description?: string;
  event_types?: string[];
}

/** What PATCH may change. */
const CHANGEABLE = ["url", "description", "event_types"] as const;

/**
 * A receiver's URL as non-admins see it: path and query may carry the receiver's own token
 * (`?token=…`, or Slack and Teams in the path), so only the origin shows, followed by `/…`
 * when there is more. Only admins, who set it, see the whole URL.
 */
export function originOnly(url: URL): string {
  return url.pathname !== "/" || url.search ? `${url.origin}/…` : url.href;
}

/**
 * The trail keeps what it is given forever: the origin as non-admins see it, and a hash of the
 * whole URL that confirms a URL one already knows.
 */
function forTheTrail(url: URL): string {
  return `${originOnly(url)} (sha256 ${sha256Hex(url.href).slice(0, 16)})`;
}

/** `alert.fired` matches itself, `alert.*` and `*`; no filter matches everything. */
export function matchesEventType(filter: readonly string[] | null, type: string): boolean {
  if (filter === null || filter.length === 0) return true;
  return filter.some((pattern) =>
    pattern === "*" || pattern === type ? true : pattern.endsWith(".*") && type.startsWith(pattern.slice(0, -1)),
  );
}

/** Webhook receivers of a tenant: registration, secrets (sealed at rest), disable/enable, delete. */
export class EndpointService {
  private readonly byId: Statement<EndpointRow, [string, string]>;
  private readonly ofTenant: Statement<EndpointRow, [string, string, number]>;
  private readonly live: Statement<Pick<EndpointRow, "id" | "event_types">, [string]>;
  /** Live endpoints per tenant for new notifications; another process's changes show within a second. */
  private readonly receivers = new TtlCache<string, { id: string; filter: string[] | null }[]>(1000);
  /** Opened secrets by sealed value: a rotation writes a new sealed value, so entries never go stale. */
  private readonly keys = new Map<string, Uint8Array>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly audit: AuditHook,
    private readonly sealingKey: CryptoKey,
    private readonly allowPrivate: boolean,
    private readonly maxPerTenant: number,
  ) {
    const sqlite = db.$client;
    this.byId = sqlite.query("SELECT * FROM webhook_endpoints WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL");
    this.ofTenant = sqlite.query(
      "SELECT * FROM webhook_endpoints WHERE tenant_id = ? AND deleted_at IS NULL AND id < ? ORDER BY id DESC LIMIT ?",
    );
    this.live = sqlite.query(
      "SELECT id, event_types FROM webhook_endpoints WHERE tenant_id = ? AND deleted_at IS NULL AND disabled_at IS NULL",
    );
  }

  async create(principal: Principal, input: EndpointInput, meta: RequestMeta) {
    const url = await this.checkedUrl(input.url);
    const id = ulid(this.clock.now());
    const secret = newWebhookSecret();
    const sealed = await seal(this.sealingKey, secret, id);
    // Kept, and audited, as filtered on: each type once; none (every type) as [], as a change records it.
    const distinctTypes = [...new Set(input.event_types ?? [])];
    const eventTypes = distinctTypes.length > 0 ? JSON.stringify(distinctTypes) : null;
    this.db.transaction(
      (tx) => {
        // Each endpoint is a copy of every matching notification and its own share of delivery work.
        const count = this.db.$client
          .query<{ n: number }, [string]>(
            "SELECT count(*) AS n FROM webhook_endpoints WHERE tenant_id = ? AND deleted_at IS NULL",
          )
          .get(principal.tid);
        if ((count?.n ?? 0) >= this.maxPerTenant) {
          throw new HttpProblem(
            409,
            "too-many-endpoints",
            `A tenant may have ${this.maxPerTenant} webhook endpoints (WEBHOOK_MAX_ENDPOINTS); delete one first.`,
          );
        }
        this.db.$client
          .query(
            `INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, secret_sealed, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(id, principal.tid, url.href, input.description ?? "", eventTypes, sealed, this.clock.now());
        this.audit.append(
          tx,
          this.event(principal, AuditAction.webhookCreated, id, meta, {
            url: forTheTrail(url),
            event_types: distinctTypes,
            description: input.description ?? "",
          }),
        );
      },
      { behavior: "immediate" },
    );
    this.receivers.delete(principal.tid);
    return { endpoint: this.get(principal.tid, id), secret };
  }

  /**
   * Changes an endpoint's URL, description or event types; its secret, state and waiting
   * deliveries stay (they go to the new URL from their next attempt).
   */
  async update(principal: Principal, id: string, input: Partial<EndpointInput>, meta: RequestMeta) {
    if (CHANGEABLE.every((field) => input[field] === undefined)) {
      throw new HttpProblem(422, "validation", "Send at least one of url, description or event_types.", {
        errors: [{ in: "body", field: "", message: "Send at least one of url, description, event_types" }],
      });
    }
    const endpoint = this.get(principal.tid, id);
    const url = input.url === undefined ? undefined : await this.checkedUrl(input.url);
    const distinctTypes = input.event_types && [...new Set(input.event_types)];
    const eventTypes = distinctTypes?.length ? JSON.stringify(distinctTypes) : null;
    this.db.transaction(
      (tx) => {
        // What it was when the lock was taken (another process may have changed it since the read above).
        const before = this.byId.get(principal.tid, endpoint.id) ?? endpoint;
        const changed = this.db.$client
          .query(
            `UPDATE webhook_endpoints SET url = coalesce(?1, url), description = coalesce(?2, description),
             event_types = CASE WHEN ?3 THEN ?4 ELSE event_types END
           WHERE id = ?5 AND deleted_at IS NULL`,
          )
          .run(url?.href ?? null, input.description ?? null, input.event_types !== undefined, eventTypes, endpoint.id);
        // Deleted while the URL was being checked.
        if (changed.changes === 0) throw notFound("No webhook endpoint with this id.");
        // What changed, and what it was.
        const params: Record<string, unknown> = {};
        const previous: Record<string, unknown> = {};
        if (url) {
          params.url = forTheTrail(url);
          previous.url = forTheTrail(new URL(before.url));
        }
        if (input.description !== undefined) {
          params.description = input.description;
          previous.description = before.description;
        }
        if (distinctTypes !== undefined) {
          params.event_types = distinctTypes;
          previous.event_types = before.event_types === null ? [] : (JSON.parse(before.event_types) as string[]);
        }
        params.previous = previous;
        this.audit.append(tx, this.event(principal, AuditAction.webhookUpdated, endpoint.id, meta, params));
      },
      { behavior: "immediate" },
    );
    this.receivers.delete(principal.tid);
    return this.get(principal.tid, endpoint.id);
  }

  /** Neither deleted nor disabled. */
  isLive(tenantId: string, id: string): boolean {
    const row = this.byId.get(tenantId, id);
    return row !== null && row.disabled_at === null;
  }

  get(tenantId: string, id: string): EndpointRow {
    const row = this.byId.get(tenantId, id);
    if (!row) throw notFound("No webhook endpoint with this id.");
    return row;
  }

  /** Newest first, ids below `before` when given. */
  list(tenantId: string, options: { limit: number; before?: string }): EndpointRow[] {
    // "~" sorts after every ULID character: no cursor means from the newest.
    return this.ofTenant.all(tenantId, options.before ?? "~", options.limit);
  }

  /** Endpoints of the tenant that take `type`, for the outbox rows of a new notification. */
  receiversOf(tenantId: string, type: string): string[] {
    const live = this.receivers.get(tenantId, this.clock.now(), () =>
      this.live.all(tenantId).map((row) => ({
        id: row.id,
        filter: row.event_types === null ? null : (JSON.parse(row.event_types) as string[]),
      })),
    );
    const ids: string[] = [];
    for (const endpoint of live) if (matchesEventType(endpoint.filter, type)) ids.push(endpoint.id);
    return ids;
  }

  /** Deleting stops delivery: what was still waiting is marked dead, so nothing stays pending forever. */
  delete(principal: Principal, id: string, meta: RequestMeta): void {
    const endpoint = this.get(principal.tid, id);
    const now = this.clock.now();
    this.db.transaction(
      (tx) => {
        const sqlite = this.db.$client;
        // Deleted meanwhile by another process: one delete, one audit event; this one is a 404.
        const changed = sqlite
          .query("UPDATE webhook_endpoints SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL")
          .run(now, endpoint.id);
        if (changed.changes === 0) throw notFound("No webhook endpoint with this id.");
        sqlite
          .query(
            `UPDATE webhook_deliveries SET status = 'dead', last_error = 'endpoint deleted'
           WHERE status IN ('pending', 'failed') AND tenant_id = ? AND endpoint_id = ?`,
          )
          .run(principal.tid, endpoint.id);
        this.audit.append(tx, this.event(principal, AuditAction.webhookDeleted, endpoint.id, meta));
      },
      { behavior: "immediate" },
    );
    this.receivers.delete(principal.tid);
  }

  /**
   * A new secret signs from now on; the one it replaces alongside it for `overlapSeconds` (none:
   * it stops at once), so receivers can switch without refusing a delivery.
   */
  async rotateSecret(principal: Principal, id: string, overlapSeconds: number, meta: RequestMeta) {
    const endpoint = this.get(principal.tid, id);
    const secret = newWebhookSecret();
    const sealed = await seal(this.sealingKey, secret, endpoint.id);
    const overlapUntil = overlapSeconds === 0 ? null : this.clock.now() + overlapSeconds * 1000;
    this.db.transaction(
      (tx) => {
        // The secret being replaced is read by the UPDATE itself, not from the read above: two
        // rotations at once then apply one after the other, and neither brings back a stopped secret.
        const changed = this.db.$client
          .query(
            `UPDATE webhook_endpoints
                SET previous_secret_sealed = CASE WHEN ?1 IS NULL THEN NULL ELSE secret_sealed END,
                    previous_secret_expires_at = ?1, secret_sealed = ?2
              WHERE id = ?3 AND deleted_at IS NULL`,
          )
          .run(overlapUntil, sealed, endpoint.id);
        if (changed.changes === 0) throw notFound("No webhook endpoint with this id.");
        this.audit.append(
          tx,
          this.event(principal, AuditAction.webhookSecretRotated, endpoint.id, meta, {
            overlap_seconds: overlapSeconds,
          }),
        );
      },
      { behavior: "immediate" },
    );
    return { secret, endpoint: this.get(principal.tid, endpoint.id) };
  }

  setDisabled(principal: Principal, id: string, disabled: boolean, meta: RequestMeta): EndpointRow {
    const endpoint = this.get(principal.tid, id);
    if ((endpoint.disabled_at !== null) === disabled) return endpoint;
    this.db.transaction(
      (tx) => {
        // Changed meanwhile by another process: nothing left to change, and nothing to audit.
        const changed = this.db.$client
          .query(
            `UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ?
              WHERE id = ? AND deleted_at IS NULL AND (disabled_at IS NULL) = ?`,
          )
          .run(disabled ? this.clock.now() : null, disabled ? "disabled by an admin" : null, endpoint.id, disabled);
        if (changed.changes === 0) return;
        if (disabled) this.park(principal.tid, endpoint.id);
        else this.unpark(principal.tid, endpoint.id);
        this.audit.append(
          tx,
          this.event(principal, disabled ? AuditAction.webhookDisabled : AuditAction.webhookEnabled, endpoint.id, meta),
        );
      },
      { behavior: "immediate" },
    );
    this.receivers.delete(principal.tid);
    return this.get(principal.tid, endpoint.id);
  }

  /** A receiver answered 410 Gone: stop sending until an admin enables it again. */
  disableGone(tenantId: string, id: string, statusCode: number): void {
    this.db.transaction(
      (tx) => {
        const changed = this.db.$client
          .query(
            "UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ? WHERE id = ? AND disabled_at IS NULL",
          )
          .run(this.clock.now(), `receiver answered ${statusCode}`, id).changes;
        if (changed === 0) return;
        this.park(tenantId, id);
        this.audit.append(tx, {
          action: AuditAction.webhookDisabled,
          outcome: "success",
          tenantId,
          actor: { type: "system", id: "dispatcher" },
          target: { type: "webhook_endpoint", id },
          reason: `receiver answered ${statusCode}`,
          params: { status_code: statusCode },
        });
      },
      { behavior: "immediate" },
    );
    this.receivers.delete(tenantId);
  }

  /** Waiting deliveries of a disabled endpoint leave the dispatcher's due index until it is enabled. */
  // Waiting deliveries are found through the (status, tenant) index: no index per endpoint is kept,
  // as every notification would pay for it.
  private park(tenantId: string, endpointId: string): void {
    this.db.$client
      .query(
        "UPDATE webhook_deliveries SET due_at = ? WHERE status IN ('pending', 'failed') AND tenant_id = ? AND endpoint_id = ?",
      )
      .run(PARKED, tenantId, endpointId);
  }

  private unpark(tenantId: string, endpointId: string): void {
    this.db.$client
      .query(
        `UPDATE webhook_deliveries SET due_at = ?
         WHERE status IN ('pending', 'failed') AND tenant_id = ? AND endpoint_id = ? AND due_at = ?`,
      )
      .run(this.clock.now(), tenantId, endpointId, PARKED);
  }

  /** The keys that sign for an endpoint now: the current secret, and the previous one while it overlaps. */
  async signingKeys(
    row: Pick<EndpointRow, "id" | "secret_sealed" | "previous_secret_sealed" | "previous_secret_expires_at">,
  ) {
    const keys = [await this.key(row.secret_sealed, row.id)];
    if (row.previous_secret_sealed && (row.previous_secret_expires_at ?? 0) > this.clock.now())
      keys.push(await this.key(row.previous_secret_sealed, row.id));
    return keys;
  }

  private async key(sealed: string, endpointId: string): Promise<Uint8Array> {
    let key = this.keys.get(sealed);
    if (!key) {
      key = secretBytes(await open(this.sealingKey, sealed, endpointId));
      if (this.keys.size > 10_000) this.keys.clear();
      this.keys.set(sealed, key);
    }
    return key;
  }

  private async checkedUrl(raw: string): Promise<URL> {
    const url = parseEndpointUrl(raw);
    if (!this.allowPrivate) await assertPublicDestination(url);
    return url;
  }

  private event(
    principal: Principal,
    action: AuditActionName,
    endpointId: string,
    meta: RequestMeta,
    params?: Record<string, unknown>,
  ): SecurityEvent {
    return callerEvent(principal, action, { type: "webhook_endpoint", id: endpointId }, meta, params);
  }
}
