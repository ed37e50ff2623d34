import type { RequestMeta } from "../../plugins/request-context";
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
  /** Request parameters; redacted by an allow-list per action before they are stored. */
  readonly params?: Record<string, unknown>;
}

/** Where security-relevant actions are reported: the audit trail (`trail.ts`). */
export interface AuditHook {
  /** Inside the transaction of the change the event records. */
  append(tx: unknown, event: SecurityEvent): void;
  /** In a transaction of its own, for events that change nothing else. */
  record(event: SecurityEvent): void;
}

/**
 * Who a signed-in caller is in the trail. A caller holding a token exchanged for an API key is that
 * key (`api_key`, its id): an admin may give another user a key, and what is done with it must not
 * read as that user's own doing.
 */
export function actorOf(caller: { readonly sub: string; readonly client_id?: string }): SecurityEvent["actor"] {
  return caller.client_id === undefined ? { type: "user", id: caller.sub } : { type: "api_key", id: caller.client_id };
}

/** An event with the request it came from. */
export function requestEvent(
  action: AuditActionName,
  outcome: SecurityEvent["outcome"],
  meta: RequestMeta,
  event: Pick<SecurityEvent, "tenantId" | "actor" | "target" | "reason" | "params">,
): SecurityEvent {
  return { action, outcome, ...event, requestId: meta.requestId, ip: meta.ip, userAgent: meta.userAgent };
}

/** A successful change made by a signed-in caller, with the request it came from. */
export function callerEvent(
  caller: { readonly tid: string; readonly sub: string; readonly client_id?: string },
  action: AuditActionName,
  target: SecurityEvent["target"],
  meta: RequestMeta,
  params?: Record<string, unknown>,
): SecurityEvent {
  return requestEvent(action, "success", meta, { tenantId: caller.tid, actor: actorOf(caller), target, params });
}
