import { Database } from "bun:sqlite";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DATABASE_FILE } from "../../../db/client";
import type { Config } from "../../config";
import { importSealingKey } from "../../lib/sealed-box";
import { hmacHex } from "../../lib/secrets";

export const MASTER_KEY_FILE = "master.key";

/** Keys derived from the master key, each for one purpose, so no key is used twice. */
export interface ServerSecrets {
  /** Keyed hash of API-key secrets: a stolen database cannot be brute-forced offline without it. */
  readonly apiKeyPepper: Uint8Array;
  /** Encrypts private signing keys at rest. */
  readonly sealingKey: CryptoKey;
  /** Signs short-lived confirm tokens of two-step bulk operations. */
  readonly confirmKey: Uint8Array;
  /** Chains the audit trail: AUDIT_KEY when configured (production requires it), else derived. */
  readonly auditKey: Uint8Array;
}

/**
 * MASTER_KEY when configured; otherwise DATA_DIR/master.key, created on first start (0600),
 * so an embedded install works with no setup. Back it up with the database.
 */
export function loadMasterKey(dataDir: string, configured: Uint8Array | undefined): Uint8Array {
  if (configured) return configured;
  const file = join(dataDir, MASTER_KEY_FILE);
  if (!existsSync(file)) {
    // A database that holds keyed rows was written with a master key: a new one would open
    // none of them, and chain the trail under another key (a CLI run without MASTER_KEY
    // exported, a restore that left master.key behind).
    if (holdsKeyedRows(dataDir)) {
      throw new Error(
        `no master key: the database in ${dataDir} was written with one; set MASTER_KEY, or put its master.key back in ${dataDir}`,
      );
    }
    try {
      // "wx": when the CLI and the server start together, exactly one of them writes the key.
      writeFileSync(file, Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64"), {
        mode: 0o600,
        flag: "wx",
      });
      chmodSync(file, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  keepPrivate(file);
  const key = Buffer.from(readFileSync(file, "utf8").trim(), "base64");
  if (key.byteLength < 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return new Uint8Array(key);
}

/**
 * Makes `file` 0600 when group or others may read it, as the database is at every open: the
 * key opens every sealed signing key and webhook secret, and a copy put back with `cp` or under
 * a loose umask would otherwise stay readable by every account on the machine. A file this
 * process may not change (another owner, a read-only mount) stops the command rather than serve
 * with a key anyone can read.
 */
function keepPrivate(file: string): void {
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  try {
    chmodSync(file, 0o600);
  } catch (error) {
    throw new Error(
      `${file} is readable by other users (mode ${mode.toString(8).padStart(4, "0")}) and cannot be made 0600 here (${(error as NodeJS.ErrnoException).code}): make it 0600 and owned by the user warden runs as, or set MASTER_KEY instead`,
    );
  }
}

/** Tables whose rows only the master key can open or check: sealed keys and secrets, peppered hashes. */
const KEYED_TABLES = ["signing_keys", "api_keys", "webhook_endpoints"];

function holdsKeyedRows(dataDir: string): boolean {
  const file = join(dataDir, DATABASE_FILE);
  if (!existsSync(file)) return false;
  const sqlite = new Database(file, { readonly: true });
  try {
    return KEYED_TABLES.some((table) => {
      try {
        return sqlite.query(`SELECT 1 FROM ${table} LIMIT 1`).get() !== null;
      } catch {
        return false; // no such table yet: a database only just created
      }
    });
  } finally {
    sqlite.close();
  }
}

/** The secrets for this DATA_DIR and configuration: what every command and the server start from. */
export async function serverSecretsFor(config: Config): Promise<ServerSecrets> {
  const derived = await deriveServerSecrets(loadMasterKey(config.dataDir, config.masterKey));
  return config.auditKey ? { ...derived, auditKey: new Uint8Array(config.auditKey) } : derived;
}

export async function deriveServerSecrets(masterKey: Uint8Array): Promise<ServerSecrets> {
  const derive = (purpose: string) => new Uint8Array(Buffer.from(hmacHex(masterKey, `warden:${purpose}:v1`), "hex"));
  return {
    apiKeyPepper: derive("api-key-hash"),
    sealingKey: await importSealingKey(derive("key-ring-sealing")),
    confirmKey: derive("bulk-confirm"),
    auditKey: derive("audit-chain"),
  };
}
