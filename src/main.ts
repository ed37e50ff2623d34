#!/usr/bin/env bun
import { DataDirError, openDatabase } from "../db/client";
import { applyMigrations } from "../db/migrate";
import { migrations } from "../db/migrations";
import { VERSION } from "./app";
import { type Config, ConfigError, loadConfig } from "./config";
import { createLogger } from "./lib/logger";
import { ADMIN_CREATE_USAGE, adminCreate, UsageError } from "./modules/admin/cli";
import { auditKeyCommand, auditSignCheckpoints, auditVerify } from "./modules/audit/cli";
import { keysRotate } from "./modules/auth/cli";
import { backup, restoreCheckCommand } from "./modules/backup/cli";
import { DOCS_PATH } from "./plugins/docs";
import { exitOnFatalErrors, exitOnSignals, startRuntime } from "./runtime";

const USAGE = `warden ${VERSION}

Usage: warden <command>

Commands:
  serve          start the HTTP service (default)
  migrate        apply pending database migrations and exit
  admin create   --tenant <slug> --email <email> [--role admin|developer|viewer] [--json]
                 create a user (and its tenant if new) with a generated password and an API key
  keys rotate [--force]
                 promote the next signing key and publish a new next key (refused while the
                 next key is younger than the JWKS cache, 5 minutes, unless --force)
  audit verify   recompute the audit chain; exit 1 naming the first broken link
  audit key      print the key the audit trail is chained with, as an AUDIT_KEY value
  audit sign-checkpoints
                 sign archive checkpoints an earlier version wrote without a MAC (you vouch for them)
  backup <file>  write an online, consistent copy of the database (mode 0600) while the server runs
  restore-check <file>
                 check a backup: integrity, schema version, row counts, master key, audit chain; exit 1 on any problem
  help           show this message

Configuration comes from the environment; see the README.`;

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

async function serve(config: Config): Promise<void> {
  const log = createLogger(config.logLevel);
  const runtime = await startRuntime(config, log);
  const docs = new URL(DOCS_PATH, runtime.url).href;
  const bind = `${config.host}:${runtime.server.port}`;
  const scope =
    config.host === "0.0.0.0" || config.host === "::" ? " (all interfaces; set HOST=127.0.0.1 for local only)" : "";
  log.info(
    {
      url: runtime.url.href,
      bind,
      docs,
      data_dir: config.dataDir,
      redis: config.redisUrl ? "configured" : "disabled",
      // Which process of several on one database delivers webhooks.
      webhook_dispatch: config.webhook.dispatch,
    },
    `listening on ${bind}${scope}: ${runtime.url.href} (Swagger UI: ${docs})`,
  );
  if (config.webhook.allowPrivate && !isLoopback(config.host)) {
    log.warn(
      { webhook_allow_private: true, bind },
      "webhook endpoints may target private and loopback addresses (cloud metadata included): set WEBHOOK_ALLOW_PRIVATE=false (or NODE_ENV=production) unless every tenant admin is trusted",
    );
  }

  exitOnSignals(runtime, log);
  exitOnFatalErrors(log);
}

function migrate(config: Config): void {
  const db = openDatabase(config.dataDir, { migrate: false });
  const applied = applyMigrations(db.$client, migrations);
  db.$client.close();
  console.log(
    applied > 0
      ? `database in ${config.dataDir}: applied ${applied} migration${applied === 1 ? "" : "s"}; up to date`
      : `database in ${config.dataDir} is up to date (nothing to apply)`,
  );
}

function noArguments(argv: string[], command: string): void {
  if (argv.length > 1) {
    throw new UsageError(
      `usage: warden ${command} (it takes no arguments: set PORT, HOST and the rest in the environment; see the README)`,
    );
  }
}

function fileArgument(argv: string[], command: string): string {
  const file = argv[1];
  if (!file || argv.length > 2 || file.startsWith("-")) throw new UsageError(`usage: warden ${command} <file>`);
  return file;
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? "serve";
  if (command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return 0;
  }
  const config = loadConfig();
  switch (command) {
    case "serve":
      // Configuration comes from the environment only: `serve --port 9000` would otherwise
      // start on 8080 as if it had been heard.
      noArguments(argv, "serve");
      await serve(config);
      return -1;
    case "migrate":
      noArguments(argv, "migrate");
      migrate(config);
      return 0;
    case "admin":
      if (argv[1] !== "create") throw new UsageError(`unknown admin command; usage: ${ADMIN_CREATE_USAGE}`);
      console.log(await adminCreate(argv.slice(2), config));
      return 0;
    case "audit": {
      if (argv.length > 2) {
        throw new UsageError(
          "usage: warden audit verify | sign-checkpoints | key (each takes no arguments: set DATA_DIR and the keys in the environment)",
        );
      }
      if (argv[1] === "key") {
        console.log(await auditKeyCommand(config));
        return 0;
      }
      if (argv[1] === "sign-checkpoints") {
        console.log(await auditSignCheckpoints(config));
        return 0;
      }
      if (argv[1] !== "verify") {
        throw new UsageError("unknown audit command; usage: warden audit verify | sign-checkpoints | key");
      }
      const { ok, report } = await auditVerify(config);
      (ok ? console.log : console.error)(report);
      return ok ? 0 : 1;
    }
    case "backup":
      console.log(backup(fileArgument(argv, "backup"), config));
      return 0;
    case "restore-check": {
      const { ok, report } = await restoreCheckCommand(fileArgument(argv, "restore-check"), config);
      (ok ? console.log : console.error)(report);
      return ok ? 0 : 1;
    }
    case "keys":
      if (argv[1] !== "rotate" || argv.slice(2).some((arg) => arg !== "--force"))
        throw new UsageError("usage: warden keys rotate [--force]");
      console.log(await keysRotate(config, { force: argv.includes("--force") }));
      return 0;
    default:
      console.error(`warden: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

try {
  const code = await main(process.argv.slice(2));
  if (code >= 0) process.exit(code);
} catch (error) {
  if (error instanceof ConfigError || error instanceof DataDirError) {
    console.error(`warden: invalid configuration: ${error.message}`);
    process.exit(2);
  }
  if (error instanceof UsageError || String((error as { code?: unknown }).code ?? "").startsWith("ERR_PARSE_ARGS")) {
    console.error(`warden: ${(error as Error).message}`);
    process.exit(2);
  }
  // Usage and configuration exit 2; a command that failed or refused (a backup onto a file) exits 1.
  console.error(`warden: ${(error as Error).message}`);
  process.exit(1);
}
