import type { Database, Statement } from "bun:sqlite";
import { type EndpointRow, PARKED } from "./endpoints";
import type { Candidate } from "./fair-share";

/** A delivery the dispatcher has leased: what an attempt needs. */
export interface Leased {
  id: string;
  tenant_id: string;
  endpoint_id: string;
  notification_id: string;
  payload: string;
  attempts: number;
  created_at: number;
  delivered_at: number | null;
  resent_at: number | null;
}

/** Due deliveries of enabled endpoints, as the due index serves them (its condition word for word). */
const DUE = `SELECT d.id, d.tenant_id, d.endpoint_id FROM webhook_deliveries d INDEXED BY webhook_deliveries_due
    JOIN webhook_endpoints e ON e.id = d.endpoint_id
    WHERE d.status NOT IN ('delivered', 'dead') AND d.due_at <= ?1 AND e.disabled_at IS NULL`;

/** The lease's two reads, named for the test that checks how SQLite runs them. */
export const DISPATCH_SQL = {
  // Oldest first. INDEXED BY: left to itself the planner picks the status index and sorts the
  // whole backlog on every lease.
  candidates: `${DUE} ORDER BY d.due_at LIMIT ?2`,
  // The same, past the endpoints and tenants whose share of the slots is taken. The index holds
  // tenant and endpoint, so their rows are skipped without being read, but each is still passed
  // (~0.07 µs a row): the dispatcher paces this look by what it took.
  behind: `${DUE}
      AND d.endpoint_id NOT IN (SELECT value FROM json_each(?2))
      AND d.tenant_id NOT IN (SELECT value FROM json_each(?3))
    ORDER BY d.due_at LIMIT ?4`,
};

/** The dispatcher's statements: lease, read the endpoint, record an attempt's outcome. */
export function prepareDispatch(sqlite: Database) {
  return {
    candidates: sqlite.query(DISPATCH_SQL.candidates) as Statement<Candidate, [number, number]>,
    behind: sqlite.query(DISPATCH_SQL.behind) as Statement<Candidate, [number, string, string, number]>,
    lease: sqlite.query(
      `UPDATE webhook_deliveries SET status = 'leased', due_at = ?1
       WHERE id IN (SELECT value FROM json_each(?2)) AND status NOT IN ('delivered', 'dead') AND due_at <= ?3
       RETURNING id, tenant_id, endpoint_id, notification_id, payload, attempts, created_at, delivered_at, resent_at`,
    ) as Statement<Leased, [number, string, number]>,
    endpoint: sqlite.query("SELECT * FROM webhook_endpoints WHERE id = ?") as Statement<EndpointRow, [string]>,
    // Only while the lease is ours: one that ran out was taken again, and that attempt records.
    // A retry for an endpoint disabled meanwhile waits parked, as those already waiting did.
    finish: sqlite.query(
      `UPDATE webhook_deliveries
       SET status = ?1, attempts = ?2, last_attempt_at = ?4, last_status_code = ?5, last_error = ?6, delivered_at = ?7,
           due_at = CASE WHEN ?1 = 'failed'
             AND (SELECT disabled_at FROM webhook_endpoints WHERE id = endpoint_id) IS NOT NULL
             THEN ${PARKED} ELSE ?3 END
       WHERE id = ?8 AND status = 'leased' AND due_at = ?9`,
    ),
    // As deleting the endpoint marked what waited for it.
    abandon: sqlite.query(
      `UPDATE webhook_deliveries SET status = 'dead', last_error = 'endpoint deleted'
       WHERE id = ? AND status = 'leased' AND due_at = ?`,
    ),
    insertAttempt: sqlite.query(
      `INSERT INTO webhook_attempts (delivery_id, tenant_id, attempted_at, duration_ms, status_code, outcome, error)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
  };
}
