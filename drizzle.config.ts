import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  // Every module file; not index.ts, which exports them all again.
  schema: ["audit", "feedback", "health", "identity", "notifications", "revocation", "webhooks"].map(
    (module) => `./db/schema/${module}.ts`,
  ),
  out: "./db/migrations",
});
