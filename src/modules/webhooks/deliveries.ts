import type { Database, Statement } from "bun:sqlite";
import { DELIVERY_STATUSES, type DeliveryStatus } from "../../../db/schema";
import type { Clock } from "../../lib/clock";
import { conflict, notFound } from "../../lib/problem";
import { ulidFloor } from "../../lib/secrets";
import type { Principal } from "../../plugins/auth";
import type { RequestMeta } from "../../plugins/request-context";
import { AuditAction } from "../audit/actions";
import { type AuditHook, callerEvent } from "../audit/hook";
import type { EndpointService } from "./endpoints";

export interface DeliveryRow {
  id: string;
  tenant_id: string;
  endpoint_id: string;
  notification_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  due_at: number;
  created_at: number;
  last_attempt_at: number | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: number | null;
}

export interface AttemptRow {
  id: number;
  attempted_at: number;
  duration_ms: number;
  status_code: number | null;
  outcome: string;
  error: string | null;
}

const COLUMNS =
  "id, tenant_id, endpoint_id, notification_id, event_type, status, attempts, due_at, created_at, last_attempt_at, last_status_code, last_error, delivered_at";
const SUCCESS_WINDOW_MS = 24 * 3600 * 1000;
/** Deliveries a replay queues per transaction. */
export const REPLAY_BATCH = 1000;
const REPLAYED_STATUSES = ["delivered", "failed", "dead"] as const;

/** What operators do with deliveries: look, retry one, replay an endpoint's, see the queue. */
export class DeliveryService {
  private readonly sql: ReturnType<typeof prepare>;

  constructor(
    private readonly sqlite: Database,
    private readonly clock: Clock,
    private readonly audit: AuditHook,
    private readonly endpoints: EndpointService,
    private readonly wake: () => void,
  ) {
    this.sql = prepare(sqlite);
  }

  /**
   * Newest first. Every query goes through the (status, tenant, id) index: with no status asked
   * for, one ordered, limited scan per status, merged — no index per tenant is kept, as every
   * notification would pay for it.
   */
  list(
    tenantId: string,
    filter: { status?: DeliveryStatus; endpointId?: string; cursor?: string; limit: number },
  ): DeliveryRow[] {
    const statuses = filter.status ? [filter.status] : DELIVERY_STATUSES;
    const endpoint = filter.endpointId ? "AND endpoint_id = ?" : "";
    const one = `SELECT ${COLUMNS} FROM webhook_deliveries
      WHERE status = ? AND tenant_id = ? AND id < ? ${endpoint} ORDER BY id DESC LIMIT ?`;
    const args: (string | number)[] = [];
    for (const status of statuses) {
      args.push(status, tenantId, filter.cursor ?? "\uffff");
      if (filter.endpointId) args.push(filter.endpointId);
      args.push(filter.limit);
    }
    const sql = statuses.map(() => `SELECT * FROM (${one})`).join(" UNION ALL ");
    return this.sqlite
      .query<DeliveryRow, (string | number)[]>(`${sql} ORDER BY id DESC LIMIT ${Math.trunc(filter.limit)}`)
      .all(...args);
  }

  get(tenantId: string, id: string): { delivery: DeliveryRow; attempts: AttemptRow[] } {
    const delivery = this.sql.byId.get(tenantId, id);
    if (!delivery) throw notFound("No delivery with this id.");
    return { delivery, attempts: this.sql.attemptsOf.all(id) };
  }

  /** Send a failed or dead delivery now; if that attempt fails too, it goes on with what is left of its schedule. */
  retry(principal: Principal, id: string, meta: RequestMeta): DeliveryRow {
    const { delivery } = this.get(principal.tid, id);
    if (delivery.status !== "failed" && delivery.status !== "dead")
      throw conflict(`Only failed or dead deliveries can be retried; this one is ${delivery.status}.`);
    const endpoint = this.sql.endpointState.get(delivery.endpoint_id);
    if (!endpoint || endpoint.deleted_at !== null)
      throw conflict("The endpoint of this delivery was deleted; it cannot be sent again.");
    if (endpoint.disabled_at !== null) throw conflict("The endpoint is disabled; enable it first.");
    this.sqlite
      .transaction(() => {
        this.sql.requeue.run(this.clock.now(), delivery.id);
        this.audit.append(
          this.sqlite,
          callerEvent(principal, AuditAction.deliveryRetried, { type: "webhook_delivery", id: delivery.id }, meta, {
            endpoint_id: delivery.endpoint_id,
            status: delivery.status,
          }),
        );
      })
      .immediate();
    this.wake();
    return this.get(principal.tid, id).delivery;
  }

  /**
   * Send an endpoint's deliveries created since `since` again, same ids and bytes, with a fresh
   * schedule. In batches of REPLAY_BATCH, one transaction each with an event-loop turn between, so
   * a replay of a million deliveries does not hold every other request for seconds. One cursor
   * walks the ids of all three statuses together (a batch takes the lowest ids of three indexed
   * ranges): a delivery queued by this replay that fails or dies before it ends is behind the
   * cursor, not queued twice. The audit event is written with the first batch: no delivery is
   * queued again before the trail says why. It stops early (`complete: false`) if the endpoint is
   * disabled or deleted meanwhile.
   */
  async replay(
    principal: Principal,
    endpointId: string,
    since: number,
    meta: RequestMeta,
  ): Promise<{ replayed: number; complete: boolean }> {
    const endpoint = this.endpoints.get(principal.tid, endpointId);
    if (endpoint.disabled_at !== null) throw conflict("The endpoint is disabled; enable it first.");
    let replayed = 0;
    // Ids are ULIDs: past the floor of `since`, each (status, tenant, id) range walks the time range.
    let after = ulidFloor(since);
    for (let batch = 0, more = true; more; batch++) {
      if (batch > 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (!this.endpoints.isLive(principal.tid, endpoint.id)) return { replayed, complete: false };
      }
      more = this.sqlite
        .transaction(() => {
          if (batch === 0) {
            this.audit.append(
              this.sqlite,
              callerEvent(
                principal,
                AuditAction.deliveriesReplayed,
                { type: "webhook_endpoint", id: endpoint.id },
                meta,
                {
                  endpoint_id: endpoint.id,
                  since: new Date(since).toISOString(),
                },
              ),
            );
          }
          const ids = REPLAYED_STATUSES.flatMap((status) =>
            this.sql.replayBatch.all(status, principal.tid, after, endpoint.id, since, REPLAY_BATCH),
          )
            .map((row) => row.id)
            .sort()
            .slice(0, REPLAY_BATCH);
          const now = this.clock.now();
          for (const id of ids) replayed += this.sql.replayOne.run(now, id).changes;
          after = ids.at(-1) ?? after;
          return ids.length === REPLAY_BATCH;
        })
        .immediate();
      if (replayed > 0) this.wake();
    }
    return { replayed, complete: true };
  }

  /**
   * Deliveries waiting by status, those delivered (made) or dead (last tried) in the last 24 hours, and
   * the share of successful attempts over the last 24 hours, for one tenant.
   */
  stats(tenantId: string) {
    const queue: Record<DeliveryStatus, number> = { pending: 0, leased: 0, failed: 0, delivered: 0, dead: 0 };
    const since = this.clock.now() - SUCCESS_WINDOW_MS;
    for (const row of this.sql.tenantDepth.all(tenantId, ulidFloor(since), since)) queue[row.status] = row.n;
    const attempts = this.sql.recentAttempts.get(tenantId, since) ?? { total: 0, delivered: 0 };
    return {
      queue,
      attempts_24h: attempts.total,
      // Four decimals, as the feedback summary's rate: a ratio, not 0.3333333333333333.
      success_rate_24h:
        attempts.total === 0 ? null : Math.round((attempts.delivered / attempts.total) * 10_000) / 10_000,
    };
  }

  /**
   * How long the delivery due longest ago has been waiting, in seconds (0 when none is due): a
   * delivery in flight is due only once its lease runs out, one of a disabled endpoint never.
   */
  overdueSeconds(): number {
    const now = this.clock.now();
    const oldest = this.sql.oldestDue.get(now)?.due_at;
    return oldest === undefined ? 0 : (now - oldest) / 1000;
  }

  /** Every tenant's undelivered deliveries by status, for the queue-depth gauge. */
  depth(): Partial<Record<DeliveryStatus, number>> {
    const depth: Partial<Record<DeliveryStatus, number>> = {};
    for (const row of this.sql.depth.all()) depth[row.status] = row.n;
    return depth;
  }
}

function prepare(sqlite: Database) {
  return {
    byId: sqlite.query(`SELECT ${COLUMNS} FROM webhook_deliveries WHERE tenant_id = ? AND id = ?`) as Statement<
      DeliveryRow,
      [string, string]
    >,
    endpointState: sqlite.query("SELECT disabled_at, deleted_at FROM webhook_endpoints WHERE id = ?") as Statement<
      { disabled_at: number | null; deleted_at: number | null },
      [string]
    >,
    attemptsOf: sqlite.query(
      "SELECT id, attempted_at, duration_ms, status_code, outcome, error FROM webhook_attempts WHERE delivery_id = ? ORDER BY id",
    ) as Statement<AttemptRow, [string]>,
    // Conditional, so a delivery the dispatcher leased in the meantime is not queued twice.
    // A dead one sent again is resent: a failed one is still on its schedule, and its delay counts.
    requeue: sqlite.query(
      `UPDATE webhook_deliveries SET status = 'pending', due_at = ?1,
         resent_at = CASE WHEN status = 'dead' THEN ?1 ELSE resent_at END
       WHERE id = ?2 AND status IN ('failed', 'dead')`,
    ),
    replayBatch: sqlite.query(
      `SELECT id FROM webhook_deliveries
       WHERE status = ? AND tenant_id = ? AND id > ? AND endpoint_id = ? AND created_at >= ?
       ORDER BY id LIMIT ?`,
    ) as Statement<{ id: string }, [string, string, string, string, number, number]>,
    replayOne: sqlite.query(
      `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, due_at = ?1, resent_at = ?1
       WHERE id = ?2 AND status IN ('delivered', 'failed', 'dead')`,
    ),
    // One indexed range per status (the index leads with status, then tenant).
    // Waiting ones all; finished ones of the last day only: counting every one kept for 90 days
    // read millions of rows a dashboard poll. Delivered ones are nearly all delivered when made
    // (ids are ULIDs: `id >= ?2` is a range of the status index); a dead one dies up to a day and
    // more after it was made (the retry schedule), so by its last attempt, over the tenant's dead.
    tenantDepth: sqlite.query(
      DELIVERY_STATUSES.map((status) => {
        const recent =
          status === "delivered"
            ? " AND id >= ?2"
            : status === "dead"
              ? " AND coalesce(last_attempt_at, created_at) >= ?3"
              : "";
        return `SELECT '${status}' AS status, count(*) AS n FROM webhook_deliveries WHERE status = '${status}' AND tenant_id = ?1${recent}`;
      }).join(" UNION ALL "),
    ) as Statement<{ status: DeliveryStatus; n: number }, [string, string, number]>,
    // The lease query's own plan: the due index in order, the first row of an enabled endpoint.
    oldestDue: sqlite.query(
      `SELECT d.due_at FROM webhook_deliveries d INDEXED BY webhook_deliveries_due
       JOIN webhook_endpoints e ON e.id = d.endpoint_id
       WHERE d.status NOT IN ('delivered', 'dead') AND d.due_at <= ? AND e.disabled_at IS NULL
       ORDER BY d.due_at LIMIT 1`,
    ) as Statement<{ due_at: number }, [number]>,
    depth: sqlite.query(
      `SELECT status, count(*) AS n FROM webhook_deliveries
       WHERE status IN ('pending', 'leased', 'failed', 'dead') GROUP BY status`,
    ) as Statement<{ status: DeliveryStatus; n: number }, []>,
    recentAttempts: sqlite.query(
      `SELECT count(*) AS total, coalesce(sum(outcome = 'delivered'), 0) AS delivered
       FROM webhook_attempts WHERE tenant_id = ? AND attempted_at >= ?`,
    ) as Statement<{ total: number; delivered: number }, [string, number]>,
  };
}
