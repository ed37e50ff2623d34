/** A due delivery as the lease sees it before choosing. */
export interface Candidate {
  readonly id: string;
  readonly tenant_id: string;
  readonly endpoint_id: string;
}

/** Attempts in flight per endpoint and per tenant. */
export interface InFlight {
  readonly endpoint: Map<string, number>;
  readonly tenant: Map<string, number>;
}

/**
 * Adds to `chosen`, in due order and up to `capacity`, rows whose endpoint and tenant stay
 * within `share` attempts in flight (`counts`, which it updates).
 */
export function pickFairly(
  candidates: readonly Candidate[],
  capacity: number,
  share: number,
  counts: InFlight,
  chosen: Set<string>,
): void {
  for (const { id, endpoint_id, tenant_id } of candidates) {
    if (chosen.size >= capacity) return;
    if (chosen.has(id)) continue;
    const byEndpoint = counts.endpoint.get(endpoint_id) ?? 0;
    const byTenant = counts.tenant.get(tenant_id) ?? 0;
    if (byEndpoint >= share || byTenant >= share) continue;
    counts.endpoint.set(endpoint_id, byEndpoint + 1);
    counts.tenant.set(tenant_id, byTenant + 1);
    chosen.add(id);
  }
}

export function release(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
