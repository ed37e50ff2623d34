import type { Database } from "bun:sqlite";
import { badRequest, HttpProblem } from "../../lib/problem";
import type { AuditRow } from "./trail";

export interface AuditFilter {
  actor?: string;
  action?: string;
  target?: string;
  outcome?: string;
  from?: string;
  to?: string;
}

/** The public shape of an event. */
export function publicEvent(row: AuditRow) {
  return {
    seq: row.seq,
    id: row.id,
    ts: new Date(row.ts).toISOString(),
    tenant_id: row.tenant_id,
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    target: row.target_type === null ? null : { type: row.target_type, id: row.target_id },
    outcome: row.outcome,
    reason: row.reason,
    ip: row.ip,
    user_agent: row.user_agent,
    request_id: row.request_id,
    params: JSON.parse(row.params) as Record<string, unknown>,
    params_hash: row.params_hash,
    prev_hash: row.prev_hash,
    hash: row.hash,
  };
}

/**
 * The first whole millisecond at or after `value`. Events carry milliseconds; a bound finer than
 * that is rounded up, so an inclusive `from` never takes an earlier event and an exclusive `to`
 * never drops one before it (Date.parse would truncate `.6271` to `.627`).
 */
function instant(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw badRequest(`${field} is not a date-time.`, [{ in: "query", field, message: "RFC 3339 date-time" }]);
  const beyondMs = /\.\d{3}(\d+)/.exec(value)?.[1];
  return beyondMs !== undefined && /[1-9]/.test(beyondMs) ? ms + 1 : ms;
}

/** Beyond this many matches an action counts as common (see `queryEvents`). */
const DENSE = 2000;
/**
 * A filtered page reads the tenant's events in at most this many seqs below its cursor (~20 ms
 * at worst): a filter matching little of a long trail would otherwise read all of it, blocking
 * every request meanwhile (130–200 ms at 385 000 events, seconds at millions).
 */
export const SCAN_WINDOW = 50_000;

/** A page of events, and where to go on from when the page stopped short of `limit` at its scan window. */
export interface EventPage {
  readonly rows: AuditRow[];
  /** The cursor for the events below the window, when it stopped the scan; null when it reached the tenant's first. */
  readonly resumeAt: number | null;
}

function countUpTo(sqlite: Database, tenantId: string, [from, to]: [string, string]): number {
  return (
    sqlite
      .query<{ n: number }, [string, string, string, number]>(
        "SELECT count(*) AS n FROM (SELECT 1 FROM audit_events WHERE tenant_id = ? AND action >= ? AND action < ? LIMIT ?)",
      )
      .get(tenantId, from, to, DENSE)?.n ?? 0
  );
}

/**
 * The first seq whose ts is at or after `ms` (one past the head if none), by binary search on
 * the primary key: ~20 point reads for a million events, and no index on ts to keep up on append.
 */
export function firstSeqAt(sqlite: Database, ms: number): number {
  const ends = sqlite
    .query<{ lo: number | null; hi: number | null }, []>(
      // Two subqueries: SQLite reads min() or max() off the B-tree's edge only when it is alone.
      "SELECT (SELECT min(seq) FROM audit_events) AS lo, (SELECT max(seq) FROM audit_events) AS hi",
    )
    .get();
  if (ends?.lo == null || ends.hi == null) return 1;
  const tsFrom = sqlite.query<{ seq: number; ts: number }, [number]>(
    "SELECT seq, ts FROM audit_events WHERE seq >= ? ORDER BY seq LIMIT 1",
  );
  let lo = ends.lo;
  let hi = ends.hi + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const row = tsFrom.get(mid);
    if (row === null || row.ts >= ms) hi = mid;
    else lo = row.seq + 1;
  }
  return lo;
}

/**
 * A tenant's events, newest first, older than `beforeSeq`. Seq is the cursor, so pages stay
 * stable while new events arrive. The action prefix is a range, so it can use the index.
 */
export function queryEvents(
  sqlite: Database,
  tenantId: string,
  filter: AuditFilter,
  beforeSeq: number,
  limit: number,
): EventPage {
  const where = ["tenant_id = ?", "seq < ?"];
  const args: (string | number)[] = [tenantId, beforeSeq];
  // Set when rows are tested one by one against a filter no index answers (an outcome, a common
  // action, or a target along the actor's index): that walk is windowed. An actor or a target
  // alone is read off its index, a rare action off its own: neither reads what it does not return.
  let walks = filter.outcome !== undefined || (filter.actor !== undefined && filter.target !== undefined);
  let indexedBy = "";
  if (filter.actor !== undefined) {
    where.push("actor_id = ?");
    args.push(filter.actor);
  }
  if (filter.action !== undefined) {
    // Dotted names form a hierarchy: `token.` is every token action; `auth.login` is that action
    // and its `auth.login.*` children, but not `auth.login_failed` ('_' sorts after '.').
    // One range, so the (tenant, action, seq) index serves it.
    const base = filter.action.endsWith(".") ? filter.action.slice(0, -1) : filter.action;
    const range: [string, string] = [base, `${base}.\uffff`];
    // The action index helps only when the action is rare: it yields matches out of seq order, so
    // they must all be sorted. A common action is found at once by walking seq backwards, and an
    // actor or target index already walks in seq order. A capped count tells the two apart; a
    // unary + keeps SQLite off the action index when walking is better.
    const walk =
      filter.actor !== undefined || filter.target !== undefined || countUpTo(sqlite, tenantId, range) >= DENSE;
    where.push(walk ? "+action >= ? AND +action < ?" : "action >= ? AND action < ?");
    args.push(...range);
    // Without statistics (ANALYZE) SQLite walks seq for a rare action too: the index it should use is named.
    if (!walk) indexedBy = " INDEXED BY audit_events_tenant_action";
    walks ||= walk;
  }
  if (filter.target !== undefined) {
    where.push("target_id = ?");
    args.push(filter.target);
  }
  if (filter.outcome !== undefined) {
    where.push("outcome = ?");
    args.push(filter.outcome);
  }
  const from = instant(filter.from, "from");
  const to = instant(filter.to, "to");
  if (from !== undefined && to !== undefined && from > to) {
    const message = "from must not be later than to";
    throw new HttpProblem(422, "validation", message, {
      errors: [
        { in: "query", field: "from", message },
        { in: "query", field: "to", message },
      ],
    });
  }
  let lo = 0;
  let hi = Number.MAX_SAFE_INTEGER;
  if (from !== undefined || to !== undefined) {
    // A time range becomes a seq range (ts never decreases along seq); the ts test stays, for
    // events appended before the trail kept ts in order.
    lo = from === undefined ? 0 : firstSeqAt(sqlite, from);
    hi = to === undefined ? Number.MAX_SAFE_INTEGER : firstSeqAt(sqlite, to) - 1;
    where.push("seq BETWEEN ? AND ?", "ts >= ? AND ts < ?");
    args.push(lo, hi, from ?? 0, to ?? Number.MAX_SAFE_INTEGER);
  }
  let resumeAt: number | null = null;
  if (walks && indexedBy === "") {
    // The window starts at the cursor, the tenant's last event or the end of the time range,
    // whichever is lowest, and there is more below it only down to the range's start.
    const top = Math.min(beforeSeq, (tenantEnd(sqlite, tenantId, "max") ?? 0) + 1, hi + 1);
    const bottom = top - SCAN_WINDOW;
    where.push("seq >= ?");
    args.push(bottom);
    const first = Math.max(tenantEnd(sqlite, tenantId, "min") ?? bottom, lo);
    if (first < bottom) resumeAt = bottom;
  }
  const sql = `SELECT * FROM audit_events${indexedBy} WHERE ${where.join(" AND ")} ORDER BY seq DESC LIMIT ?`;
  const rows = sqlite.query<AuditRow, (string | number)[]>(sql).all(...args, limit);
  return { rows, resumeAt: rows.length < limit ? resumeAt : null };
}

/** The tenant's first or last seq, off the edge of its index. */
function tenantEnd(sqlite: Database, tenantId: string, end: "min" | "max"): number | null {
  return (
    sqlite
      .query<{ seq: number | null }, [string]>(`SELECT ${end}(seq) AS seq FROM audit_events WHERE tenant_id = ?`)
      .get(tenantId)?.seq ?? null
  );
}

/** Rows per read while exporting: small enough that the server's memory stays flat (~50 MB measured at 200). */
const EXPORT_BATCH = 200;

/** NDJSON of every matching event, newest first, read in batches so memory stays flat at any size. */
export function exportEvents(sqlite: Database, tenantId: string, filter: AuditFilter): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let before = Number.MAX_SAFE_INTEGER;
  // Validate the filter before the first byte is sent: afterwards a 4xx can no longer be returned.
  queryEvents(sqlite, tenantId, filter, before, 1);
  let cancelled = false;
  return new ReadableStream({
    cancel() {
      cancelled = true;
    },
    // Synchronous but for empty windows (each after a turn for every other request): a pull that
    // enqueues nothing is not called again, so it goes on to the next window itself.
    pull(controller): Promise<void> | undefined {
      const step = (): Promise<void> | undefined => {
        const { rows, resumeAt } = queryEvents(sqlite, tenantId, filter, before, EXPORT_BATCH);
        if (rows.length > 0) {
          before = rows[rows.length - 1]?.seq ?? 0;
          controller.enqueue(encoder.encode(`${rows.map((row) => JSON.stringify(publicEvent(row))).join("\n")}\n`));
          return;
        }
        if (resumeAt === null) {
          controller.close();
          return;
        }
        before = resumeAt;
        return new Promise<void>((resolve) => setImmediate(resolve)).then(() => (cancelled ? undefined : step()));
      };
      return step();
    },
  });
}
