import type { AuditActionName } from "./actions";

/** Key names whose values never reach the audit trail, at any depth. */
const DENY = /pass(word)?|secret|token|key|authorization|cookie|credential|signature|private/i;

export const REDACTED = "[redacted]";

/**
 * What an action's params may carry. Anything not listed is dropped; anything whose key looks
 * secret is replaced, even when listed (a second net under the first).
 */
export const PARAM_ALLOW_LIST: Partial<Record<AuditActionName, readonly string[]>> = {
  "auth.login": ["grant_type", "username", "tenant"],
  "auth.login_failed": ["grant_type", "username", "tenant"],
  "token.issue": ["grant_type"],
  "user.create": ["email", "role"],
  "apikey.create": ["name", "role", "user_id"],
  "revocation.create": ["jti", "user_id", "session_id"],
  "revocation.bulk_preview": ["scope", "role"],
  "revocation.bulk_confirm": ["scope", "role", "users", "sessions", "confirm_id"],
  "webhook.create": ["url", "event_types", "description"],
  "webhook.update": ["url", "event_types", "description", "previous"],
  "webhook.disable": ["status_code"],
  "webhook.rotate_secret": ["overlap_seconds"],
  "delivery.retry": ["endpoint_id", "status"],
  "delivery.replay": ["endpoint_id", "since"],
  "access.denied": ["path"],
  "audit.read": ["actor", "action", "target", "outcome", "from", "to", "cursor", "limit"],
  "audit.sign_checkpoints": ["seqs"],
  "audit.export": ["actor", "action", "target", "outcome", "from", "to"],
};

export function redactParams(
  action: AuditActionName,
  params: Record<string, unknown> | undefined,
): Record<string, unknown> {
  if (!params) return {};
  const allowed = PARAM_ALLOW_LIST[action] ?? [];
  const kept: Record<string, unknown> = {};
  for (const key of allowed) if (params[key] !== undefined) kept[key] = scrub(key, params[key]);
  return kept;
}

function scrub(key: string, value: unknown): unknown {
  if (DENY.test(key)) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => scrub("", item));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, scrub(k, v)]));
  }
  return value;
}
