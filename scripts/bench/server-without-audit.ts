/**
 * Bench only: the service exactly as `src/main.ts serve` builds it, except that the audit hook
 * is a no-op, so scripts/bench-audit.ts can measure what auditing costs a write. Never run it
 * for real: nothing it does is audited.
 *
 *   DATA_DIR=… HOST=127.0.0.1 PORT=… bun scripts/bench/server-without-audit.ts
 *
 * The app is built after the swap: AdminService and the auth plugin take `security.audit` when
 * they are constructed. AuthService (logins, refresh) was built in openSecurity and keeps the
 * real trail; the write this bench measures (POST /v1/admin/revocations) goes through
 * AdminService. bench-audit.ts checks afterwards that no revocation.create event was written.
 */
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/lib/logger.ts";
import type { AuditHook } from "../../src/modules/audit/hook.ts";
import { exitOnSignals, openDeps, serve } from "../../src/runtime.ts";

const noAudit: AuditHook = {
  append() {},
  record() {},
};

const config = loadConfig();
const log = createLogger(config.logLevel);
const opened = await openDeps(config, log);
const deps = { ...opened, security: { ...opened.security, audit: noAudit } };
const runtime = serve(createApp(deps), deps);
log.warn({ url: runtime.url.href }, "listening WITHOUT an audit trail (bench only)");

exitOnSignals(runtime, log);
