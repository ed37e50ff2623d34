import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { migrations } from "../../../db/migrations";
import { verifyChain } from "../audit/verify";

export interface RestoreCheckReport {
  readonly ok: boolean;
  readonly lines: readonly string[];
}

const MIGRATIONS_TABLE = "__drizzle_migrations";

/**
 * Checks that a backup can be restored: SQLite integrity and foreign keys, the schema at the
 * latest migration this build carries, row counts, and the audit chain under `auditKey`
 * (undefined: no key to check it with, which is itself a failure). Opens the copy read-only.
 */
export function restoreCheck(file: string, auditKey: Uint8Array | undefined): RestoreCheckReport {
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
  const step = (label: string, run: () => void) => {
    try {
      run();
    } catch (error) {
      line(label, (error as Error).message, false);
    }
  };
  try {
    step("integrity", () => {
      const problems = db
        .query<{ integrity_check: string }, []>("PRAGMA integrity_check")
        .all()
        .map((r) => r.integrity_check);
      const good = problems.length === 1 && problems[0] === "ok";
      line("integrity", good ? "ok" : `${problems.slice(0, 3).join("; ")}${problems.length > 3 ? " …" : ""}`, good);
      const orphans = db.query("PRAGMA foreign_key_check").all().length;
      line("foreign keys", orphans === 0 ? "ok" : `${orphans} rows point at missing rows`, orphans === 0);
    });
    step("schema", () => {
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
    step("rows", () => {
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
    step("audit chain", () => {
      if (!auditKey) {
        line("audit chain", "no audit key: set AUDIT_KEY or MASTER_KEY, or point DATA_DIR at the master.key", false);
        return;
      }
      const report = verifyChain(db, auditKey);
      const span = report.from > 0 ? ` after archived seq ${report.from}` : "";
      line(
        "audit chain",
        report.ok
          ? `intact: ${report.checked} events${span}`
          : `BROKEN at seq ${report.brokenAt?.seq}: ${report.brokenAt?.reason}`,
        report.ok,
      );
    });
  } finally {
    db.close();
  }
  return finish(lines, ok);
}

function finish(lines: string[], ok: boolean): RestoreCheckReport {
  return { ok, lines: [...lines, ok ? "OK: the backup can be restored" : "FAILED: do not restore this backup"] };
}
