/** The readiness probe's row. */
import { integer, sqliteTable } from "drizzle-orm/sqlite-core";

/** One row, rewritten by /ready to prove the database file accepts writes. */
export const healthProbe = sqliteTable("health_probe", {
  id: integer("id").primaryKey(),
  checkedAt: integer("checked_at").notNull(),
});
