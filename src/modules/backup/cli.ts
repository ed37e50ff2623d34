import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../config";
import { MASTER_KEY_FILE, serverSecretsFor } from "../auth/server-secrets";
import { backupDatabase } from "./backup";
import { restoreCheck } from "./restore-check";

/** `backup <file>`: safe while the server runs on the same DATA_DIR. */
export function backup(file: string, config: Config): string {
  const result = backupDatabase(config.dataDir, file);
  return `backup written to ${result.file} (${result.bytes} bytes, ${result.ms} ms); keep the master key with it`;
}

/** `restore-check <file>`: the report, and whether the backup passed every check. */
export async function restoreCheckCommand(file: string, config: Config): Promise<{ ok: boolean; report: string }> {
  // Never create a master key here (serverSecretsFor would on an empty DATA_DIR): a new key
  // would only make a good chain look broken.
  const haveMasterKey = config.masterKey || existsSync(join(config.dataDir, MASTER_KEY_FILE));
  const keys = haveMasterKey ? await serverSecretsFor(config) : { auditKey: config.auditKey };
  const { ok, lines } = await restoreCheck(file, keys);
  return { ok, report: lines.join("\n") };
}
