import type { Database, Statement } from "bun:sqlite";
import type { Db } from "../../../db/client";
import { canonicalJson } from "../../lib/canonical-json";
import type { Clock } from "../../lib/clock";
import { hmacHex, sha256Hex, ulid } from "../../lib/secrets";
import type { WriteBatcher } from "../../lib/write-batcher";
import type { AuditHook, SecurityEvent } from "./hook";
import { redactParams } from "./redact";

export const GENESIS_HASH = "0".repeat(64);

/** The link the next event chains to; `ts` is 0 at the genesis and after a checkpoint. */
interface ChainHead {
  seq: number;
  hash: string;
  ts: number;
}

/** A stored event, as a row of `audit_events` (snake_case, as SQLite returns it). */
export interface AuditRow {
  seq: number;
  id: string;
  ts: number;
  tenant_id: string | null;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  reason: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  params_hash: string;
  params: string;
  prev_hash: string;
  hash: string;
}

/**
 * The exact bytes a link's HMAC covers: everything but the hashes themselves, as canonical JSON.
 * The envelope's keys are written in sorted order so plain JSON.stringify is canonical for it;
 * `params` (any shape) goes through canonicalJson. `params` may be given parsed, to save a parse.
 */
export function canonicalEvent(
  row: Omit<AuditRow, "hash" | "prev_hash">,
  params: unknown = JSON.parse(row.params),
): string {
  const envelope = JSON.stringify({
    action: row.action,
    actor: { id: row.actor_id, type: row.actor_type },
    id: row.id,
    ip: row.ip,
    outcome: row.outcome,
    params: null,
    params_hash: row.params_hash,
    reason: row.reason,
    request_id: row.request_id,
    seq: row.seq,
    target: { id: row.target_id, type: row.target_type },
    tenant_id: row.tenant_id,
    ts: row.ts,
    user_agent: row.user_agent,
  });
  // A function, so `$` sequences inside the params are not read as replacement patterns.
  return envelope.replace('"params":null', () => `"params":${canonicalJson(params)}`);
}

export function linkHash(key: Uint8Array, prevHash: string, canonical: string): string {
  return hmacHex(key, prevHash + canonical);
}

/** The MAC of the head record (`audit_head`): only a holder of the audit key can move the head. */
export function headMac(key: Uint8Array, seq: number, hash: string): string {
  return hmacHex(key, `head\n${seq}\n${hash}`);
}

/** Whether a trail's head record verifies with `key` (true of a trail without one). */
export function headVerifies(sqlite: Database, key: Uint8Array): boolean {
  const head = sqlite
    .query<{ seq: number; hash: string; mac: string }, []>("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
    .get();
  return !head || headMac(key, head.seq, head.hash) === head.mac;
}

/** Whether a trail's last event's own hash verifies with `key` (true of a trail without events). */
export function lastEventVerifies(sqlite: Database, key: Uint8Array): boolean {
  const last = sqlite.query<AuditRow, []>("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").get();
  if (!last) return true;
  const { hash, prev_hash, ...rest } = last;
  return linkHash(key, prev_hash, canonicalEvent(rest)) === hash;
}

/** What an archive checkpoint vouches for. */
export interface Checkpoint {
  readonly seq: number;
  readonly hash: string;
  readonly archive_file: string;
  readonly events: number;
}

/** The MAC of an archive checkpoint: only a holder of the audit key can say events were archived. */
export function checkpointMac(key: Uint8Array, checkpoint: Checkpoint): string {
  return hmacHex(
    key,
    `checkpoint\n${checkpoint.seq}\n${checkpoint.hash}\n${checkpoint.archive_file}\n${checkpoint.events}`,
  );
}

/**
 * The tamper-evident audit trail. `append` writes inside the caller's transaction, so an event
 * and the change it records commit (or roll back) together; `record` is for events with no
 * other write (a failed login, a read of the trail). Each link's HMAC covers the previous hash,
 * so editing, deleting or reordering any row breaks the chain from that row on.
 */
export class AuditTrail implements AuditHook {
  private readonly head: Statement<ChainHead, []>;
  private readonly last: Statement<ChainHead, []>;
  private readonly checkpoint: Statement<ChainHead, []>;
  private readonly insert: Statement;
  private readonly writeHead: Statement;
  private readonly moveHead: Statement;
  /** Inside a group commit: the head is written once, as it commits (see `batchedBy`). */
  private deferred = false;
  private appendedInBatch = false;

  constructor(
    private readonly db: Db,
    private readonly key: Uint8Array,
    private readonly clock: Clock,
  ) {
    const sqlite = db.$client;
    this.head = sqlite.query("SELECT seq, hash, ts FROM audit_head WHERE id = 1");
    this.last = sqlite.query("SELECT seq, hash, ts FROM audit_events ORDER BY seq DESC LIMIT 1");
    this.checkpoint = sqlite.query("SELECT seq, hash, 0 AS ts FROM audit_checkpoints ORDER BY seq DESC LIMIT 1");
    this.insert = sqlite.query(
      `INSERT INTO audit_events (seq, id, ts, tenant_id, actor_type, actor_id, action, target_type, target_id, outcome,
         reason, ip, user_agent, request_id, params_hash, params, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // The head only moves forward: a batch whose events all rolled back, after the newest rows
    // were removed, must not move it back onto what is left.
    this.moveHead = sqlite.query(
      "UPDATE audit_head SET seq = ?1, hash = ?2, ts = ?3, mac = ?4 WHERE id = 1 AND seq < ?1",
    );
    this.writeHead = sqlite.query(
      "INSERT INTO audit_head (id, seq, hash, ts, mac) VALUES (1, ?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
    );
  }

  /**
   * At start-up, for a trail written before the head record existed: its newest event becomes
   * the head. From then on every append moves it, and verification holds the chain to it.
   */
  recordHeadIfMissing(): void {
    if (this.head.get()) return;
    const last = this.last.get();
    if (last) this.writeHead.run(last.seq, last.hash, last.ts, headMac(this.key, last.seq, last.hash));
  }

  /** Appends `event` inside the transaction the caller holds (the write lock makes the chain serial). */
  append(_tx: unknown, event: SecurityEvent): void {
    if (!this.db.$client.inTransaction)
      throw new Error("audit events are appended inside the transaction of their change");
    // The head record when it is ahead of the last row: removing the newest events must not let
    // the next one take their place (it chains onto what was removed, and verification names the
    // gap). The last row when it is ahead (written by a build before the head record): its seq
    // is taken.
    const head = this.head.get();
    const last = this.last.get();
    const previous = (last && (!head || last.seq > head.seq) ? last : head) ??
      this.checkpoint.get() ?? { seq: 0, hash: GENESIS_HASH, ts: 0 };
    const redacted = redactParams(event.action, event.params);
    const params = canonicalJson(redacted);
    // ts never decreases along seq (a clock stepping back repeats the last instant), which is
    // what lets a time range become a seq range without an index on ts (see query.ts).
    const now = Math.max(this.clock.now(), previous.ts);
    const row: Omit<AuditRow, "hash" | "prev_hash"> = {
      seq: previous.seq + 1,
      id: ulid(now),
      ts: now,
      tenant_id: event.tenantId,
      actor_type: event.actor.type,
      actor_id: event.actor.id,
      action: event.action,
      target_type: event.target?.type ?? null,
      target_id: event.target?.id ?? null,
      outcome: event.outcome,
      reason: event.reason ?? null,
      ip: event.ip ?? null,
      user_agent: event.userAgent?.slice(0, 256) ?? null,
      request_id: event.requestId ?? null,
      params_hash: sha256Hex(params),
      params,
    };
    const hash = linkHash(this.key, previous.hash, canonicalEvent(row, redacted));
    this.insert.run(
      row.seq,
      row.id,
      row.ts,
      row.tenant_id,
      row.actor_type,
      row.actor_id,
      row.action,
      row.target_type,
      row.target_id,
      row.outcome,
      row.reason,
      row.ip,
      row.user_agent,
      row.request_id,
      row.params_hash,
      row.params,
      previous.hash,
      hash,
    );
    if (this.deferred) this.appendedInBatch = true;
    else this.recordHead({ seq: row.seq, hash, ts: row.ts });
  }

  private recordHead(head: ChainHead): void {
    const mac = headMac(this.key, head.seq, head.hash);
    if (this.moveHead.run(head.seq, head.hash, head.ts, mac).changes === 0) {
      this.writeHead.run(head.seq, head.hash, head.ts, mac);
    }
  }

  /**
   * The group commit carries many events a transaction: the head is written once, as the last row
   * when it commits (a write rolled back to its savepoint leaves no row the head could name),
   * instead of once an event (~3.5 µs each). Appends in a batch chain onto the rows before them,
   * which are ahead of the stored head.
   */
  batchedBy(batcher: WriteBatcher): void {
    batcher.join({
      began: () => {
        this.deferred = true;
        this.appendedInBatch = false;
      },
      committing: () => {
        this.deferred = false;
        if (!this.appendedInBatch) return;
        const last = this.last.get();
        if (last) this.recordHead(last);
      },
      abandoned: () => {
        this.deferred = false;
      },
    });
  }

  record(event: SecurityEvent): void {
    this.db.$client.transaction(() => this.append(undefined, event)).immediate();
  }

  /** Whether the head record verifies with `key` (true without a head record). */
  headVerifiesWith(key: Uint8Array): boolean {
    return headVerifies(this.db.$client, key);
  }

  /**
   * At start-up: throws unless the head record verifies with this key. A trail written under
   * another audit key would otherwise run on with every verification naming seq 1 as broken, and
   * every event appended chaining under the wrong key. Only a wrong key fails here: a changed
   * event leaves the head's MAC intact, for verification to name.
   */
  assertHeadKey(): void {
    if (this.headVerifiesWith(this.key)) return;
    throw new Error(
      "the audit trail's head record does not verify with this audit key: the trail was written with another audit key. Start with the AUDIT_KEY it was written with; a trail begun without AUDIT_KEY used a key derived from the master key, which `warden audit key` (run without AUDIT_KEY) prints as an AUDIT_KEY value",
    );
  }

  /**
   * Throws unless the trail's head record and last event verify with this key. For a command
   * run next to the server (the CLI): started without the server's AUDIT_KEY, it would sign its
   * events with another key, and every verification from there on would report a break. An empty
   * trail has nothing to check.
   */
  assertKeyMatches(): void {
    // A trail archived whole still has its head, under the key it was written with.
    this.assertHeadKey();
    const last = this.lastEvent();
    if (!last || this.lastEventVerifiesWith(this.key)) return;
    throw new Error(
      `the audit trail's last event (seq ${last.seq}) does not verify with this audit key: run with the AUDIT_KEY the server uses (or, if it does, the event was altered: \`warden audit verify\` names the break)`,
    );
  }

  /** Whether the head record and the last event verify with `key` (true of a trail with neither). */
  verifiesWith(key: Uint8Array): boolean {
    return this.headVerifiesWith(key) && this.lastEventVerifiesWith(key);
  }

  private lastEvent(): AuditRow | undefined {
    return (
      (this.db.$client.query("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").get() as AuditRow) ?? undefined
    );
  }

  private lastEventVerifiesWith(key: Uint8Array): boolean {
    return lastEventVerifies(this.db.$client, key);
  }
}
