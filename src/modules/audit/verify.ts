import type { Database } from "bun:sqlite";
import { type AuditRow, canonicalEvent, GENESIS_HASH, linkHash } from "./trail";

export interface ChainReport {
  readonly ok: boolean;
  /** Events checked, in seq order. */
  readonly checked: number;
  /** The first link that does not hold, and why. */
  readonly brokenAt?: { readonly seq: number; readonly reason: string };
  /** Where the chain starts: 0, or the last event archived by retention. */
  readonly from: number;
  readonly head?: { readonly seq: number; readonly hash: string };
}

/**
 * Recomputes the whole chain, streaming rows in seq order (constant memory), and names the first
 * broken link: an edited row fails its own HMAC, a deleted row breaks the next row's `prev_hash`,
 * and swapped rows fail because each HMAC covers its own seq.
 */
export function verifyChain(sqlite: Database, key: Uint8Array): ChainReport {
  const checkpoint = sqlite
    .query<{ seq: number; hash: string }, []>("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
    .get();
  const from = checkpoint?.seq ?? 0;
  let expectedPrev = checkpoint?.hash ?? GENESIS_HASH;
  let expectedSeq = from + 1;
  let checked = 0;
  let head: ChainReport["head"];
  const rows = sqlite.query<AuditRow, [number]>("SELECT * FROM audit_events WHERE seq > ? ORDER BY seq").iterate(from);
  for (const row of rows) {
    const broken = (reason: string): ChainReport => ({
      ok: false,
      checked,
      brokenAt: { seq: row.seq, reason },
      from,
      head,
    });
    if (row.seq !== expectedSeq) return broken(`expected seq ${expectedSeq}: an event is missing`);
    if (row.prev_hash !== expectedPrev)
      return broken("prev_hash does not match the previous event: an event was removed or changed");
    let canonical: string;
    try {
      canonical = canonicalEvent(row);
    } catch {
      return broken("the stored params are not valid JSON");
    }
    if (linkHash(key, row.prev_hash, canonical) !== row.hash)
      return broken("the event's hash does not match its contents");
    expectedPrev = row.hash;
    expectedSeq = row.seq + 1;
    checked++;
    head = { seq: row.seq, hash: row.hash };
  }
  return { ok: true, checked, from, head };
}
