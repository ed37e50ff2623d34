import type { Database } from "bun:sqlite";
import { type AuditRow, canonicalEvent, GENESIS_HASH, linkHash } from "./trail";

/** A verified link: verification can resume after it. */
export interface ChainPosition {
  readonly seq: number;
  readonly hash: string;
}

export interface ChainReport {
  readonly ok: boolean;
  /** Events checked, in seq order. */
  readonly checked: number;
  /** The first link that does not hold, and why. */
  readonly brokenAt?: { readonly seq: number; readonly reason: string };
  /** Where the chain starts: 0, or the last event archived by retention. */
  readonly from: number;
  readonly head?: ChainPosition;
}

/** Where the stored chain starts: the last link archived by retention, or the genesis. */
export function chainStart(sqlite: Database): ChainPosition {
  const checkpoint = sqlite
    .query<ChainPosition, []>("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
    .get();
  return checkpoint ?? { seq: 0, hash: GENESIS_HASH };
}

/**
 * Recomputes the whole chain, streaming rows in seq order (constant memory), and names the first
 * broken link: an edited row fails its own HMAC, a deleted row breaks the next row's `prev_hash`,
 * and swapped rows fail because each HMAC covers its own seq.
 */
export function verifyChain(sqlite: Database, key: Uint8Array): ChainReport {
  return verifyLinks(sqlite, key, chainStart(sqlite));
}

/**
 * Verifies up to `limit` links after `after` (a checkpoint, or the head of an earlier
 * verification), so a background worker can check only what was appended since, in chunks.
 */
export function verifyLinks(
  sqlite: Database,
  key: Uint8Array,
  after: ChainPosition,
  limit = Number.MAX_SAFE_INTEGER,
): ChainReport {
  const from = after.seq;
  let expectedPrev = after.hash;
  let expectedSeq = from + 1;
  let checked = 0;
  let head: ChainReport["head"];
  const rows = sqlite
    .query<AuditRow, [number, number]>("SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?")
    .iterate(from, limit);
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
