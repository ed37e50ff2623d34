import type { Logger } from "../../lib/logger";
import type { AuditActionName } from "./actions";

export interface SecurityEvent {
  readonly action: AuditActionName;
  readonly outcome: "success" | "failure" | "denied";
  readonly tenantId: string | null;
  readonly actor: { readonly type: "user" | "api_key" | "anonymous" | "system"; readonly id: string | null };
  readonly target?: { readonly type: string; readonly id: string };
  readonly reason?: string;
  readonly requestId?: string;
  readonly ip?: string | null;
  readonly userAgent?: string | null;
}

/**
 * Where security-relevant actions are reported. For now a structured log line per event; the
 * tamper-evident audit trail replaces this with a write in the same transaction as the change.
 */
export interface AuditHook {
  record(event: SecurityEvent): void;
}

export function logAuditHook(log: Logger): AuditHook {
  return {
    record(event) {
      log.info(
        {
          audit: event.action,
          outcome: event.outcome,
          tenant: event.tenantId,
          actor: event.actor,
          target: event.target,
          reason: event.reason,
          request_id: event.requestId,
        },
        "security event",
      );
    },
  };
}
