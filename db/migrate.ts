import type { Database } from "bun:sqlite";

export interface EmbeddedMigration {
  readonly tag: string;
  readonly when: number;
  readonly breakpoints: boolean;
  readonly sql: string;
}

const TABLE = "__drizzle_migrations";

/**
 * Applies drizzle-kit migrations carried in the bundle (drizzle's own migrator reads them
 * from disk, which a compiled executable does not have). Keeps drizzle's bookkeeping table, and
 * takes the write lock before reading it so a CLI and a server starting together apply each
 * migration exactly once.
 */
export function applyMigrations(sqlite: Database, migrations: readonly EmbeddedMigration[]): number {
  sqlite.run(`CREATE TABLE IF NOT EXISTS ${TABLE} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)`);
  let applied = 0;
  sqlite
    .transaction(() => {
      const last = sqlite
        .query<{ created_at: number }, []>(`SELECT created_at FROM ${TABLE} ORDER BY created_at DESC LIMIT 1`)
        .get();
      for (const migration of migrations) {
        if (last && Number(last.created_at) >= migration.when) continue;
        for (const statement of migration.sql.split("--> statement-breakpoint")) {
          if (statement.trim()) sqlite.run(statement);
        }
        const hash = new Bun.CryptoHasher("sha256").update(migration.sql).digest("hex");
        sqlite.run(`INSERT INTO ${TABLE} (hash, created_at) VALUES (?, ?)`, [hash, migration.when]);
        applied++;
      }
    })
    .immediate();
  return applied;
}
