function feedbackSubjectPrefix(tenant: string): string {
  return `warden:fb:{${tenant}}:on:`;
}

/**
 * Every Redis key and channel the service uses, in one place. Per-tenant keys carry the tenant
 * in a hash tag (`{acme}`), so all of one tenant's feedback lands in one Redis Cluster slot and a
 * multi-key script stays legal there.
 */
export const RedisKeys = {
  revocationChannel: "warden:revocations",
  /** GCRA state (a TAT) of one tenant + principal in one route class. */
  rateLimit: (routeClass: string, tenant: string, principal: string) =>
    `warden:rl:${routeClass}:{${tenant}}:${principal}`,
  /** One feedback entry (JSON), expiring with it. */
  feedbackItem: (tenant: string, id: string) => `warden:fb:{${tenant}}:item:${id}`,
  /**
   * Sorted set of a subject's entries, `id:verdict` scored by expiry; expires with its last entry.
   * A subject is its type and id: alert 42 and incident 42 are two.
   */
  feedbackSubject: (tenant: string, subjectType: string, subjectId: string) =>
    `${feedbackSubjectPrefix(tenant)}${subjectType}:${subjectId}`,
  /** What every subject key of a tenant starts with; past it, the subject as `type:id`. */
  feedbackSubjectPrefix,
  /** Sorted set of a tenant's subjects (`type:id`), scored by their last entry's expiry; expires with it. */
  feedbackSubjects: (tenant: string) => `warden:fb:{${tenant}}:on`,
  /** Sorted set of a tenant's entries with one verdict, ids scored by expiry: the tenant's totals. */
  feedbackVerdict: (tenant: string, verdict: string) => `warden:fb:{${tenant}}:verdict:${verdict}`,
} as const;
