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

/** Attempts in flight one endpoint and one tenant may hold at most. */
export interface Shares {
  readonly endpoint: number;
  readonly tenant: number;
}

/**
 * The shares of `slots`: a quarter of them (rounded up) stays out of reach of any one tenant,
 * and half of a tenant's share out of reach of any one endpoint. A receiver that hangs until the
 * timeout, fed a backlog, would otherwise hold every slot and stall every other tenant's
 * webhooks, or hold its tenant's whole share and stall its own tenant's other endpoints.
 */
export function sharesOf(slots: number): Shares {
  const tenant = Math.max(1, slots - Math.ceil(slots / 4));
  return { tenant, endpoint: Math.max(1, Math.floor(tenant / 2)) };
}

/**
 * Adds to `chosen`, in due order and up to `capacity`, rows whose endpoint and tenant stay
 * within their shares of attempts in flight (`counts`, which it updates).
 */
export function pickFairly(
  candidates: readonly Candidate[],
  capacity: number,
  share: Shares,
  counts: InFlight,
  chosen: Set<string>,
): void {
  for (const { id, endpoint_id, tenant_id } of candidates) {
    if (chosen.size >= capacity) return;
    if (chosen.has(id)) continue;
    const byEndpoint = counts.endpoint.get(endpoint_id) ?? 0;
    const byTenant = counts.tenant.get(tenant_id) ?? 0;
    if (byEndpoint >= share.endpoint || byTenant >= share.tenant) continue;
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
