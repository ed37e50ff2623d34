import type { Database } from "bun:sqlite";
import {
  type AuditRow,
  type Checkpoint,
  canonicalEvent,
  checkpointMac,
  GENESIS_HASH,
  headMac,
  headVerifies,
  lastEventVerifies,
  linkHash,
} from "./trail";

/** A verified link: verification can resume after it. */
export interface ChainPosition {
  readonly seq: number;
  readonly hash: string;
}

const GENESIS: ChainPosition = { seq: 0, hash: GENESIS_HASH };

type BrokenLink = { readonly seq: number; readonly reason: string };

export interface ChainReport {
  readonly ok: boolean;
  /** Events checked, in seq order. */
  readonly checked: number;
  /** The first link that does not hold, and why. */
  readonly brokenAt?: BrokenLink;
  /** Where the chain starts: 0, or the last event archived by retention. */
  readonly from: number;
  readonly head?: ChainPosition;
}

type StoredCheckpoint = Checkpoint & { readonly mac: string | null };

/**
 * Where the stored chain starts: the genesis when nothing was archived, else the checkpoint
 * retention wrote for the last event it archived, which must be the one right before the first
 * event left, and must carry the audit key's MAC. Missing events at the start with no such
 * checkpoint, or a checkpoint made up or changed, is a broken chain.
 */
export function chainStart(sqlite: Database, key: Uint8Array): { start: ChainPosition; brokenAt?: BrokenLink } {
  for (const checkpoint of sqlite
    .query<StoredCheckpoint, []>("SELECT seq, hash, archive_file, events, mac FROM audit_checkpoints ORDER BY seq")
    .iterate()) {
    if (checkpoint.mac !== checkpointMac(key, checkpoint)) {
      const reason =
        checkpoint.mac === null
          ? "the archive checkpoint carries no MAC: it was made up, or archived by a version before checkpoints were signed (see `audit sign-checkpoints`)"
          : "the archive checkpoint does not verify: it was made up or changed";
      return { start: GENESIS, brokenAt: { seq: checkpoint.seq, reason } };
    }
  }
  const first = sqlite.query<{ seq: number | null }, []>("SELECT min(seq) AS seq FROM audit_events").get()?.seq;
  const checkpoint = sqlite
    .query<ChainPosition, [number]>("SELECT seq, hash FROM audit_checkpoints WHERE seq < ? ORDER BY seq DESC LIMIT 1")
    .get(first ?? Number.MAX_SAFE_INTEGER);
  const start = checkpoint ?? GENESIS;
  if (first !== null && first !== undefined && first !== start.seq + 1) {
    const reason =
      start.seq === 0
        ? `the events before seq ${first} are missing, and no archive checkpoint accounts for them`
        : `the events after archived seq ${start.seq} and before seq ${first} are missing`;
    return { start, brokenAt: { seq: start.seq + 1, reason } };
  }
  return { start };
}

/**
 * Recomputes the whole chain, streaming rows in seq order (constant memory), and names the first
 * broken link: an edited row fails its own HMAC, a deleted row breaks the next row's `prev_hash`,
 * and swapped rows fail because each HMAC covers its own seq.
 */
export function verifyChain(sqlite: Database, key: Uint8Array): ChainReport {
  const end = readChainEnd(sqlite);
  const { start, brokenAt: startBroken } = chainStart(sqlite, key);
  if (startBroken) return { ok: false, checked: 0, brokenAt: startBroken, from: start.seq };
  const report = verifyLinks(sqlite, key, start);
  if (!report.ok) return report;
  const reached = report.head ?? start;
  const brokenAt = checkEnd(sqlite, key, end, reached, start);
  return brokenAt ? { ...report, ok: false, brokenAt } : { ...report, head: reached };
}

export interface HeadRecord extends ChainPosition {
  readonly mac: string;
}

/**
 * What a walk must reach, read before it: the head record (it only moves forward, so every link
 * up to it must be there after), and whether the database has users, each created with an
 * audited event (so a trail with none at all was emptied).
 */
export interface ChainEnd {
  readonly head: HeadRecord | undefined;
  readonly hasUsers: boolean;
}

export function readChainEnd(sqlite: Database): ChainEnd {
  const head = sqlite.query<HeadRecord, []>("SELECT seq, hash, mac FROM audit_head WHERE id = 1").get() ?? undefined;
  return { head, hasUsers: sqlite.query("SELECT 1 FROM users LIMIT 1").get() !== null };
}

/**
 * What no link can show: the newest events removed (and the head record with them, or moved back
 * by hand, or written again from what was left). `reached` is where a walk that began after
 * `end` was read ended without a break.
 */
export function checkEnd(
  sqlite: Database,
  key: Uint8Array,
  end: ChainEnd,
  reached: ChainPosition,
  start: ChainPosition,
): ChainReport["brokenAt"] {
  const head = end.head;
  if (head === undefined && reached.seq === 0 && end.hasUsers) {
    return {
      seq: 1,
      reason:
        "the trail holds no events and no head record, but the database has users, each created with an audited event: the trail was emptied",
    };
  }
  if (head === undefined) {
    return reached.seq > start.seq
      ? { seq: reached.seq, reason: "the chain's head record is missing: the newest events may have been removed" }
      : undefined;
  }
  if (headMac(key, head.seq, head.hash) !== head.mac)
    return { seq: head.seq, reason: "the chain's head record does not verify: it was changed" };
  if (head.seq > reached.seq) {
    return {
      seq: reached.seq + 1,
      reason: `the chain's head is seq ${head.seq}: the events after seq ${reached.seq} are missing`,
    };
  }
  if (head.seq <= start.seq) return undefined;
  const row = sqlite.query<{ hash: string }, [number]>("SELECT hash FROM audit_events WHERE seq = ?").get(head.seq);
  return row?.hash === head.hash
    ? undefined
    : { seq: head.seq, reason: "the event at the chain's head is not the one the head record names" };
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
    const reason = linkFault(key, row, { seq: expectedSeq - 1, hash: expectedPrev });
    if (reason !== undefined) return { ok: false, checked, brokenAt: { seq: row.seq, reason }, from, head };
    expectedPrev = row.hash;
    expectedSeq = row.seq + 1;
    checked++;
    head = { seq: row.seq, hash: row.hash };
  }
  return { ok: true, checked, from, head };
}

/** Why `row` is not the link that follows `previous`, or undefined when it is. */
export function linkFault(key: Uint8Array, row: AuditRow, previous: ChainPosition): string | undefined {
  if (row.seq !== previous.seq + 1) return `expected seq ${previous.seq + 1}: an event is missing`;
  if (row.prev_hash !== previous.hash) {
    return "prev_hash does not match the previous event: an event was removed or changed";
  }
  let canonical: string;
  try {
    canonical = canonicalEvent(row);
  } catch {
    return "the stored params are not valid JSON";
  }
  return linkHash(key, row.prev_hash, canonical) === row.hash ? undefined : HASH_MISMATCH;
}

/** linkFault's reason for an event whose hash its contents do not give: an edit, or another key. */
export const HASH_MISMATCH = "the event's hash does not match its contents";

/**
 * Whether a failed `report` reads as the trail having been written with another key rather than
 * changed: under another key the head record's MAC fails and every link's hash does, the first
 * and the last alike. Anything short of that (a last event that verifies, an event missing) is a
 * break, whatever the head record says.
 */
export function writtenWithAnotherKey(sqlite: Database, key: Uint8Array, report: ChainReport): boolean {
  return (
    !report.ok &&
    report.checked === 0 &&
    report.brokenAt?.reason === HASH_MISMATCH &&
    !headVerifies(sqlite, key) &&
    !lastEventVerifies(sqlite, key)
  );
}
