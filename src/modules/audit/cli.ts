import { existsSync } from "node:fs";
import { join } from "node:path";
import { DATABASE_FILE, openDatabase } from "../../../db/client";
import type { Config } from "../../config";
import { serverSecretsFor } from "../auth/server-secrets";
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
