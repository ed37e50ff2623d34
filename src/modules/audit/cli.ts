import { existsSync } from "node:fs";
import { join } from "node:path";
import { DATABASE_FILE, openDatabase } from "../../../db/client";
import type { Config } from "../../config";
import { systemClock } from "../../lib/clock";
import { serverSecretsFor } from "../auth/server-secrets";
import { AuditAction } from "./actions";
import { AuditTrail, type Checkpoint, checkpointMac } from "./trail";
import { verifyChain } from "./verify";

/** `audit verify`: recomputes the chain; the report, and whether it held (exit code 0 or 1). */
export async function auditVerify(config: Config): Promise<{ ok: boolean; report: string }> {
  const file = join(config.dataDir, DATABASE_FILE);
  // Opening would create an empty database (and a master key) there, which would verify: a
  // mistyped DATA_DIR during an incident must not read as "intact".
  if (!existsSync(file)) return { ok: false, report: `no database at ${file}: check DATA_DIR` };
  const db = openDatabase(config.dataDir);
  try {
    const secrets = await serverSecretsFor(config);
    const report = verifyChain(db.$client, secrets.auditKey);
    const span = report.from > 0 ? ` after archived seq ${report.from}` : "";
    const head = report.head ? `; head seq ${report.head.seq}, hash ${report.head.hash}` : "";
    if (report.ok) return { ok: true, report: `audit chain intact: ${report.checked} events${span}${head}` };
    return {
      ok: false,
      report: `audit chain BROKEN at seq ${report.brokenAt?.seq}: ${report.brokenAt?.reason} (${report.checked} events verified before it${span})`,
    };
  } finally {
    db.$client.close();
  }
}

/**
 * `audit sign-checkpoints`: gives archive checkpoints written before they carried a MAC (an
 * earlier version's retention) one, so verification can start from them again. Whoever runs it
 * vouches that those checkpoints are genuine; the trail records who signed which.
 */
export async function auditSignCheckpoints(config: Config): Promise<string> {
  const file = join(config.dataDir, DATABASE_FILE);
  if (!existsSync(file)) throw new Error(`no database at ${file}: check DATA_DIR`);
  const db = openDatabase(config.dataDir);
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
 * derived from the master key, whichever the head record verifies with. A trail begun without
 * AUDIT_KEY (outside production) is chained with the derived key; production requires
 * AUDIT_KEY, and this is the value that lets that trail go on there.
 */
export async function auditKeyCommand(config: Config): Promise<string> {
  const file = join(config.dataDir, DATABASE_FILE);
  if (!existsSync(file)) throw new Error(`no database at ${file}: check DATA_DIR`);
  const secrets = await serverSecretsFor(config);
  const derived = (await serverSecretsFor({ ...config, auditKey: undefined })).auditKey;
  const db = openDatabase(config.dataDir);
  try {
    const trail = new AuditTrail(db, secrets.auditKey, systemClock);
    const key = [secrets.auditKey, derived].find((candidate) => trail.headVerifiesWith(candidate));
    if (!key) {
      throw new Error(
        "neither AUDIT_KEY nor the key derived from the master key verifies this trail's head record: its key is another one",
      );
    }
    return `AUDIT_KEY=base64:${Buffer.from(key).toString("base64")}`;
  } finally {
    db.$client.close();
  }
}
