import { createReadStream, existsSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { openExistingDatabase } from "../../../db/client";
import type { Config } from "../../config";
import { systemClock } from "../../lib/clock";
import { serverSecretsFor } from "../auth/server-secrets";
import { AuditAction } from "./actions";
import { ARCHIVE_DIR } from "./retention";
import { type AuditRow, AuditTrail, type Checkpoint, checkpointMac, GENESIS_HASH, headVerifies } from "./trail";
import { type ChainPosition, linkFault, verifyChain, writtenWithAnotherKey } from "./verify";

/** `audit verify`: recomputes the chain; the report, and whether it held (exit code 0 or 1). */
export async function auditVerify(config: Config): Promise<{ ok: boolean; report: string }> {
  const db = openExistingDatabase(config.dataDir);
  try {
    const secrets = await serverSecretsFor(config);
    const report = verifyChain(db.$client, secrets.auditKey);
    const span = report.from > 0 ? ` after archived seq ${report.from}` : "";
    const head = report.head ? `; head seq ${report.head.seq}, hash ${report.head.hash}` : "";
    if (report.ok) return { ok: true, report: `audit chain intact: ${report.checked} events${span}${head}` };
    // Under another key every link fails, which would read as a trail rewritten.
    if (writtenWithAnotherKey(db.$client, secrets.auditKey, report)) {
      return {
        ok: false,
        report: `audit chain cannot be verified with this audit key: its head record, its first event (seq ${report.brokenAt?.seq}) and its last event all fail with it, so the trail was most likely written with another key. Run with the AUDIT_KEY the server uses; a trail begun without AUDIT_KEY used a key derived from the master key, which \`warden audit key\` (run without AUDIT_KEY) prints. With the right key, this is a trail rewritten`,
      };
    }
    const headNote = headVerifies(db.$client, secrets.auditKey) ? "" : "; the head record does not verify either";
    return {
      ok: false,
      report: `audit chain BROKEN at seq ${report.brokenAt?.seq}: ${report.brokenAt?.reason} (${report.checked} events verified before it${span}${headNote})`,
    };
  } finally {
    db.$client.close();
  }
}

/**
 * Throws unless `checkpoint`'s archive file, in DATA_DIR, holds the events it vouches for: every
 * one a link of the chain after `previous` (seq, prev_hash and HMAC under `key`), as many as it
 * counts, the last one its seq and hash.
 */
async function assertArchiveHolds(
  dataDir: string,
  checkpoint: Checkpoint,
  previous: ChainPosition,
  key: Uint8Array,
): Promise<void> {
  const archives = resolve(dataDir, ARCHIVE_DIR);
  const file = resolve(dataDir, checkpoint.archive_file);
  const refuse = (why: string) => new Error(`the checkpoint at seq ${checkpoint.seq} cannot be signed: ${why}`);
  if (!file.startsWith(`${archives}/`)) throw refuse(`its archive ${checkpoint.archive_file} is not in ${archives}`);
  if (!existsSync(file)) throw refuse(`its archive ${file} is missing`);
  let position = previous;
  let events = 0;
  let lineNumber = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY })) {
    lineNumber++;
    if (line === "") continue;
    let row: AuditRow;
    try {
      row = JSON.parse(line) as AuditRow;
    } catch {
      throw refuse(`line ${lineNumber} of ${file} is not JSON`);
    }
    const fault = linkFault(key, row, position);
    if (fault) throw refuse(`${file}, seq ${row.seq}: ${fault}`);
    position = { seq: row.seq, hash: row.hash };
    events++;
  }
  if (events !== checkpoint.events || position.seq !== checkpoint.seq || position.hash !== checkpoint.hash) {
    throw refuse(`${file} does not end at its seq and hash with ${checkpoint.events} events`);
  }
}

/**
 * `audit sign-checkpoints`: gives archive checkpoints written before they carried a MAC (an
 * earlier version's retention) one, so verification can start from them again, once their
 * archive files show they hold what they say (each checked as a stretch of the chain). Nothing is
 * signed unless every one checks; the trail records which were.
 */
export async function auditSignCheckpoints(config: Config): Promise<string> {
  const db = openExistingDatabase(config.dataDir);
  try {
    const secrets = await serverSecretsFor(config);
    const trail = new AuditTrail(db, secrets.auditKey, systemClock);
    trail.assertKeyMatches();
    const sqlite = db.$client;
    const unsigned = sqlite
      .query<Checkpoint, []>(
        "SELECT seq, hash, archive_file, events FROM audit_checkpoints WHERE mac IS NULL ORDER BY seq",
      )
      .all();
    if (unsigned.length === 0) return "no unsigned archive checkpoints";
    for (const checkpoint of unsigned) {
      const previous = sqlite
        .query<ChainPosition, [number]>(
          "SELECT seq, hash FROM audit_checkpoints WHERE seq < ? ORDER BY seq DESC LIMIT 1",
        )
        .get(checkpoint.seq) ?? { seq: 0, hash: GENESIS_HASH };
      await assertArchiveHolds(config.dataDir, checkpoint, previous, secrets.auditKey);
    }
    sqlite
      .transaction(() => {
        const sign = sqlite.query("UPDATE audit_checkpoints SET mac = ? WHERE seq = ?");
        for (const checkpoint of unsigned) sign.run(checkpointMac(secrets.auditKey, checkpoint), checkpoint.seq);
        trail.append(undefined, {
          action: AuditAction.auditCheckpointsSigned,
          outcome: "success",
          tenantId: null,
          actor: { type: "system", id: "cli" },
          params: { seqs: unsigned.map((checkpoint) => checkpoint.seq) },
        });
      })
      .immediate();
    return `signed ${unsigned.length} archive checkpoint(s) at seq ${unsigned.map((c) => c.seq).join(", ")}`;
  } finally {
    db.$client.close();
  }
}

/**
 * `audit key`: the key the trail is chained with, as an AUDIT_KEY value: AUDIT_KEY's, or the key
 * derived from the master key, whichever the head record and the last event verify with. A trail begun without
 * AUDIT_KEY (outside production) is chained with the derived key; production requires
 * AUDIT_KEY, and this is the value that lets that trail go on there.
 */
export async function auditKeyCommand(config: Config): Promise<string> {
  const db = openExistingDatabase(config.dataDir);
  try {
    const secrets = await serverSecretsFor(config);
    const derived = (await serverSecretsFor({ ...config, auditKey: undefined })).auditKey;
    const trail = new AuditTrail(db, secrets.auditKey, systemClock);
    const key = [secrets.auditKey, derived].find((candidate) => trail.verifiesWith(candidate));
    if (!key) {
      throw new Error(
        "neither AUDIT_KEY nor the key derived from the master key verifies this trail's head record and last event: its key is another one",
      );
    }
    return `AUDIT_KEY=base64:${Buffer.from(key).toString("base64")}`;
  } finally {
    db.$client.close();
  }
}
