/** Every audited action name, in one place. */
export const AuditAction = {
  loginSucceeded: "auth.login",
  loginFailed: "auth.login_failed",
  tokenIssued: "token.issue",
  tokenRefreshed: "token.refresh",
  refreshReused: "token.refresh_reuse",
  tokenRevoked: "token.revoke",
  logout: "auth.logout",
  sessionRevoked: "session.revoke",
  userCreated: "user.create",
  userDisabled: "user.disable",
  userEnabled: "user.enable",
  apiKeyCreated: "apikey.create",
  apiKeyRevoked: "apikey.revoke",
  revocationCreated: "revocation.create",
  bulkRevocationPreviewed: "revocation.bulk_preview",
  bulkRevocationConfirmed: "revocation.bulk_confirm",
  keysRotated: "keys.rotate",
  accessDenied: "access.denied",
  // Reserved for the webhook endpoints and delivery operations, which are audited the same way.
  webhookCreated: "webhook.create",
  webhookDeleted: "webhook.delete",
  webhookSecretRotated: "webhook.rotate_secret",
  deliveryRetried: "delivery.retry",
  auditRead: "audit.read",
  auditExported: "audit.export",
  auditVerified: "audit.verify",
} as const;

export type AuditActionName = (typeof AuditAction)[keyof typeof AuditAction];
