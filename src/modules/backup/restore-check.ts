import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { migrations } from "../../../db/migrations";
import { open } from "../../lib/sealed-box";
import { verifyChain, writtenWithAnotherKey } from "../audit/verify";

export interface RestoreCheckReport {
  readonly ok: boolean;
  readonly lines: readonly string[];
}

const MIGRATIONS_TABLE = "__drizzle_migrations";

/** The keys a restored server will start with; a missing one fails its check. */
export interface RestoreKeys {
  readonly auditKey?: Uint8Array;
  readonly sealingKey?: CryptoKey;
}

/**
 * Checks that a backup can be restored: SQLite integrity and foreign keys, the schema at the
 * latest migration this build carries, row counts, that the master key opens its sealed values
 * (signing keys, webhook secrets: a server started with another key refuses to start), and the
 * audit chain under the audit key. A key missing from `keys` fails its check.
 * Opens the copy read-only.
 */
export async function restoreCheck(file: string, keys: RestoreKeys): Promise<RestoreCheckReport> {
  const lines: string[] = [];
  let ok = true;
  const line = (label: string, text: string, good = true) => {
    lines.push(`  ${label.padEnd(12)} ${good ? "" : "FAILED: "}${text}`);
    if (!good) ok = false;
  };
  lines.push(`restore-check ${file}`);
  if (!existsSync(file)) {
    line("file", "does not exist", false);
    return finish(lines, false);
  }
  let db: Database;
  try {
    db = new Database(file, { readonly: true, strict: true });
  } catch (error) {
    line("open", (error as Error).message, false);
    return finish(lines, false);
  }
  const step = async (label: string, run: () => void | Promise<void>) => {
    try {
      await run();
    } catch (error) {
      line(label, (error as Error).message, false);
    }
  };
  try {
    await step("integrity", () => {
      const problems = db
        .query<{ integrity_check: string }, []>("PRAGMA integrity_check")
        .all()
        .map((r) => r.integrity_check);
      const good = problems.length === 1 && problems[0] === "ok";
      line("integrity", good ? "ok" : `${problems.slice(0, 3).join("; ")}${problems.length > 3 ? " …" : ""}`, good);
      const orphans = db.query("PRAGMA foreign_key_check").all().length;
      line("foreign keys", orphans === 0 ? "ok" : `${orphans} rows point at missing rows`, orphans === 0);
    });
    await step("schema", () => {
      const latest = migrations.at(-1);
      const applied = db
        .query<{ created_at: number }, []>(
          `SELECT created_at FROM ${MIGRATIONS_TABLE} ORDER BY created_at DESC LIMIT 1`,
        )
        .get();
      const tag = migrations.find((m) => m.when === Number(applied?.created_at))?.tag ?? "unknown";
      const good = latest !== undefined && Number(applied?.created_at) === latest.when;
      line("schema", good ? `${tag} (latest)` : `at ${tag}, this build expects ${latest?.tag}`, good);
    });
    await step("rows", () => {
      const tables = db
        .query<{ name: string }, [string]>(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != ? ORDER BY name",
        )
        .all(MIGRATIONS_TABLE);
      const counts = tables.map(({ name }) => {
        const row = db.query<{ n: number }, []>(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`).get();
        return `${name} ${row?.n ?? 0}`;
      });
      line("rows", counts.join(", "));
    });
    await step("master key", async () => {
      const sealingKey = keys.sealingKey;
      if (!sealingKey) {
        line("master key", "no master key: set MASTER_KEY, or point DATA_DIR at the master.key", false);
        return;
      }
      const sealed = sealedValues(db);
      for (const { value, context } of sealed) await open(sealingKey, value, context);
      line("master key", `opens every sealed value (${sealed.length})`);
    });
    await step("audit chain", () => {
      const auditKey = keys.auditKey;
      if (!auditKey) {
        line("audit chain", "no audit key: set AUDIT_KEY or MASTER_KEY, or point DATA_DIR at the master.key", false);
        return;
      }
      const report = verifyChain(db, auditKey);
      // With another key every link fails from seq 1 on, which would read as a trail rewritten.
      if (writtenWithAnotherKey(db, auditKey, report)) {
        line(
          "audit chain",
          "cannot verify: its head record and its first and last events do not verify with this audit key, so the trail was most likely written with another one; set the AUDIT_KEY (or MASTER_KEY) the server used",
          false,
        );
        return;
      }
      const span = report.from > 0 ? ` after archived seq ${report.from}` : "";
      line(
        "audit chain",
        report.ok
          ? `intact: ${report.checked} events${span}`
          : `BROKEN at seq ${report.brokenAt?.seq}: ${report.brokenAt?.reason}`,
        report.ok,
      );
      // The events before a checkpoint live only in their archive files, which no backup holds.
      const archives = db
        .query<{ file: string }, []>("SELECT archive_file AS file FROM audit_checkpoints ORDER BY seq")
        .all();
      if (archives.length > 0) {
        line(
          "audit archive",
          `events up to seq ${report.from} are only in ${archives.map((a) => a.file).join(", ")} (not in this backup): restore those files into DATA_DIR with it`,
        );
      }
    });
  } finally {
    db.close();
  }
  return finish(lines, ok);
}

/** Every signing key's and webhook secret's sealed form, with the context it was sealed under. */
function sealedValues(db: Database): { value: string; context: string }[] {
  const keys = db
    .query<{ value: string; context: string }, []>(
      "SELECT private_jwk_sealed AS value, kid AS context FROM signing_keys",
    )
    .all();
  const secrets = db
    .query<{ value: string; context: string }, []>(
      `SELECT secret_sealed AS value, id AS context FROM webhook_endpoints
       UNION ALL
       SELECT previous_secret_sealed, id FROM webhook_endpoints WHERE previous_secret_sealed IS NOT NULL`,
    )
    .all();
  return [...keys, ...secrets];
}

function finish(lines: string[], ok: boolean): RestoreCheckReport {
  return { ok, lines: [...lines, ok ? "OK: the backup can be restored" : "FAILED: do not restore this backup"] };
}
