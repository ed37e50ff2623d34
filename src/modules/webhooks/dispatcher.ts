import type { Database } from "bun:sqlite";
import type { Config } from "../../config";
import { nextRetryDelayMs, parseRetryAfterMs } from "../../lib/backoff";
import type { Clock } from "../../lib/clock";
import type { Logger } from "../../lib/logger";
import type { Worker } from "../../lib/worker";
import type { WriteBatcher } from "../../lib/write-batcher";
import type { Metrics } from "../../plugins/metrics";
import { attemptError } from "./attempt-error";
import { type Leased, prepareDispatch } from "./dispatch-statements";
import { type EndpointRow, type EndpointService, PARKED } from "./endpoints";
import { pickFairly, release, sharesOf } from "./fair-share";
import { pinnedPost } from "./pinned-post";
import { signatureHeader } from "./signing";
import { type Resolver, systemResolver } from "./url-policy";

const IDLE_POLL_MS = 250;
/** A lease outlives the attempt's timeout by this much before the delivery falls due again. */
const LEASE_MARGIN_MS = 5000;
const HONOURS_RETRY_AFTER = new Set([429, 502, 503, 504]);
/**
 * Looking past the backlog of endpoints at their share passes every row of it: it may take this
 * share of the time at most (a hanging receiver with 200 000 waiting took ~15 ms a lease, and
 * every new notification asks for one).
 */
const LOOK_BEHIND_SHARE = 0.1;
/** While the HTTP server is busy, delivery steps back to this pace: a pass every 20 ms, an eighth of the slots. */
const BUSY_PASS_MS = 20;

type Outcome = "delivered" | "retry" | "dead" | "disabled";

interface AttemptResult {
  statusCode: number | null;
  error: string | null;
  retryAfterMs?: number;
}

/**
 * Leases due deliveries in one statement, POSTs each with Standard Webhooks headers (no
 * transaction is open across the network call) and records every attempt. A lease is a due time
 * in the future: if this process dies mid-attempt, the delivery simply falls due again and is
 * sent with the same `webhook-id` (at-least-once).
 */
export class Dispatcher implements Worker {
  readonly name = "webhook-dispatcher";
  private readonly sql: ReturnType<typeof prepareDispatch>;
  private inFlight = 0;
  /** Attempts in flight per endpoint and per tenant: no one of either may take every slot. */
  private readonly inFlightBy = { endpoint: new Map<string, number>(), tenant: new Map<string, number>() };
  private readonly attempts = new Set<Promise<void>>();
  /** When a lease may next look past the endpoints and tenants at their share (performance.now()). */
  private lookBehindFrom = Number.NEGATIVE_INFINITY;
  /** The last lease wanted that look and had to wait for it. */
  private lookBehindWaiting = false;
  private scheduled = false;
  private timer: Timer | undefined;
  private running = false;
  private stopped = false;
  /** The leases under way, one after another (stop() waits for them). */
  private leasing: Promise<void> | undefined;
  private leaseAgain = false;
  /** Outcomes waiting to be written together: one savepoint for all of a turn's, not one each. */
  private outcomes: { write: () => void; done: (error?: unknown) => void }[] = [];
  private busy: () => boolean = () => false;

  constructor(
    sqlite: Database,
    private readonly deps: {
      clock: Clock;
      batcher: WriteBatcher;
      endpoints: EndpointService;
      config: Config["webhook"];
      metrics: Metrics;
      log: Logger;
      userAgent: string;
      /** Name resolution for receivers' hosts; node:dns unless a test gives its own. */
      resolve?: Resolver;
      /** Certificates trusted besides the system's (tests' receivers; operators set NODE_EXTRA_CA_CERTS). */
      ca?: string[];
    },
  ) {
    this.sql = prepareDispatch(sqlite);
  }

  /**
   * `busy` says when the HTTP server is saturated: accepting requests then comes first (what they
   * accept is already safe in the outbox) and delivery goes on at a trickle, catching up after.
   */
  start(busy?: () => boolean): this {
    if (busy) this.busy = busy;
    this.running = true;
    this.wake();
    return this;
  }

  /** Look for due work on the next turn (a new notification, a finished attempt, a retry request). */
  wake(): void {
    if (!this.running || this.stopped || this.scheduled) return;
    this.scheduled = true;
    clearTimeout(this.timer);
    const run = () => {
      this.scheduled = false;
      this.pass().catch((error: Error) => {
        this.deps.log.error({ err: error }, "webhook dispatch pass failed");
        this.idle();
      });
    };
    if (this.busy()) setTimeout(run, BUSY_PASS_MS);
    else setImmediate(run);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // A lease on its way still starts its attempts: wait for it, then for them.
    await this.leasing?.catch(() => undefined);
    // Attempts end by their own timeout; anything cut short is re-sent after the lease expires.
    await Promise.allSettled([...this.attempts]);
  }

  /** Tests and tools: run passes until nothing is due and nothing is in flight. */
  async drain(): Promise<void> {
    for (;;) {
      const leased = await this.lease();
      if (leased === 0 && this.attempts.size === 0) return;
      await Promise.race(this.attempts);
    }
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    // One lease at a time, or two could each fill the same free capacity.
    if (this.leasing) {
      this.leaseAgain = true;
      return;
    }
    this.leasing = this.leaseWhileAsked().finally(() => {
      this.leasing = undefined;
    });
    await this.leasing;
  }

  private async leaseWhileAsked(): Promise<void> {
    let leased: number;
    do {
      this.leaseAgain = false;
      leased = await this.lease();
    } while (this.leaseAgain && !this.stopped);
    // A look past a backlog put off: taken when due, whether or not anything else wakes us.
    if (this.lookBehindWaiting) this.later(this.lookBehindFrom - performance.now());
    else if (leased === 0 && this.inFlight === 0) this.idle();
  }

  private idle(): void {
    this.later(IDLE_POLL_MS);
  }

  private later(ms: number): void {
    clearTimeout(this.timer);
    if (!this.stopped) this.timer = setTimeout(() => this.wake(), Math.max(0, ms));
  }

  private async lease(): Promise<number> {
    // Waiting on a look is this lease's to say: one that leases nothing must not leave the last
    // one's wait standing, or pass() would arm an overdue timer, wake at once, and again.
    this.lookBehindWaiting = false;
    const quarter = Math.max(1, Math.floor(this.deps.config.concurrency / 4));
    const slots = this.running && this.busy() ? Math.max(1, Math.floor(quarter / 2)) : this.deps.config.concurrency;
    const capacity = slots - this.inFlight;
    // Under load, wait until a quarter of the slots are free and lease them in one statement.
    const worthIt = this.inFlight === 0 ? 1 : Math.min(quarter, slots);
    if (capacity < worthIt) return 0;
    const share = sharesOf(slots);
    const now = this.deps.clock.now();
    const leaseUntil = now + this.deps.config.timeoutMs + LEASE_MARGIN_MS;
    const rows = await this.deps.batcher.run(() => {
      const counts = { endpoint: new Map(this.inFlightBy.endpoint), tenant: new Map(this.inFlightBy.tenant) };
      const full = (of: Map<string, number>, limit: number) =>
        JSON.stringify([...of].filter(([, n]) => n >= limit).map(([id]) => id));
      const chosen = new Set<string>();
      const window = capacity * 4;
      const candidates = this.sql.candidates.all(now, window);
      pickFairly(candidates, capacity, share, counts, chosen);
      // A window filled by the backlog of endpoints at their share is all skipped: look once
      // more, past them, for those behind it, at most a tenth of the time.
      if (chosen.size < capacity && candidates.length === window) {
        const started = performance.now();
        if (started < this.lookBehindFrom) this.lookBehindWaiting = true;
        else {
          const behind = this.sql.behind.all(
            now,
            full(counts.endpoint, share.endpoint),
            full(counts.tenant, share.tenant),
            (capacity - chosen.size) * 4,
          );
          pickFairly(behind, capacity, share, counts, chosen);
          const ended = performance.now();
          this.lookBehindFrom = ended + (ended - started) * (1 / LOOK_BEHIND_SHARE - 1);
        }
      }
      return chosen.size === 0 ? [] : this.sql.lease.all(leaseUntil, JSON.stringify([...chosen]), now);
    });
    for (const row of rows) this.track(row, this.attempt(row, leaseUntil));
    return rows.length;
  }

  private track(delivery: Leased, attempt: Promise<void>): void {
    this.inFlight++;
    const { endpoint, tenant } = this.inFlightBy;
    endpoint.set(delivery.endpoint_id, (endpoint.get(delivery.endpoint_id) ?? 0) + 1);
    tenant.set(delivery.tenant_id, (tenant.get(delivery.tenant_id) ?? 0) + 1);
    this.attempts.add(attempt);
    void attempt
      .catch((error: unknown) => {
        // attempt() logs its own failures; this is only a backstop, so none ends the process.
        this.deps.log.error({ err: error, delivery_id: delivery.id }, "webhook attempt failed");
      })
      .finally(() => {
        this.inFlight--;
        release(endpoint, delivery.endpoint_id);
        release(tenant, delivery.tenant_id);
        this.attempts.delete(attempt);
        this.wake();
      });
  }

  private async attempt(delivery: Leased, leaseUntil: number): Promise<void> {
    const endpoint = this.sql.endpoint.get(delivery.endpoint_id);
    if (!endpoint || endpoint.deleted_at !== null) {
      // Leased as its endpoint was deleted: nothing is sent, so no attempt is recorded.
      try {
        await this.writeOutcome(() => this.sql.abandon.run(delivery.id, leaseUntil));
      } catch (error) {
        // The lease will expire, and the next lease abandons it again.
        this.deps.log.error({ err: error, delivery_id: delivery.id }, "abandoning a webhook delivery failed");
      }
      return;
    }
    const started = performance.now();
    const attemptedAt = this.deps.clock.now();
    let result: AttemptResult;
    try {
      result = await this.send(delivery, endpoint);
    } catch (error) {
      result = { statusCode: null, error: attemptError(error, this.deps.config.timeoutMs) };
    }
    const durationMs = performance.now() - started;
    this.deps.metrics.webhookAttemptDuration.observe(durationMs / 1000);
    try {
      await this.record(delivery, leaseUntil, endpoint, result, attemptedAt, durationMs);
    } catch (error) {
      // The lease will expire and the delivery will be sent again: at-least-once holds.
      this.deps.log.error({ err: error, delivery_id: delivery.id }, "recording a webhook attempt failed");
    }
  }

  private async send(delivery: Leased, endpoint: EndpointRow): Promise<AttemptResult> {
    const url = new URL(endpoint.url);
    // One deadline for the whole attempt, the name's lookup included: a resolver that never
    // answers must not hold the attempt past its lease (the delivery would be sent twice).
    const signal = AbortSignal.timeout(this.deps.config.timeoutMs);
    const keys = await this.deps.endpoints.signingKeys(endpoint);
    const messageId = `msg_${delivery.notification_id}`;
    const timestamp = Math.floor(this.deps.clock.now() / 1000);
    const response = await pinnedPost(url, {
      body: delivery.payload,
      headers: {
        "content-type": "application/json",
        "user-agent": this.deps.userAgent,
        "webhook-id": messageId,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signatureHeader(keys, messageId, timestamp, delivery.payload),
      },
      signal,
      allowPrivate: this.deps.config.allowPrivate,
      resolve: this.deps.resolve ?? systemResolver,
      ca: this.deps.ca,
    });
    await response.body?.cancel().catch(() => undefined);
    const ok = response.status >= 200 && response.status < 300;
    return {
      statusCode: response.status,
      error: ok ? null : `receiver answered ${response.status}`,
      retryAfterMs: HONOURS_RETRY_AFTER.has(response.status)
        ? parseRetryAfterMs(response.headers.get("retry-after"), this.deps.clock.now())
        : undefined,
    };
  }

  private writeOutcome(write: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.outcomes.push({ write, done: (error) => (error === undefined ? resolve() : reject(error)) });
      if (this.outcomes.length > 1) return;
      setImmediate(() => {
        const batch = this.outcomes;
        this.outcomes = [];
        this.deps.batcher
          .run(() => {
            for (const outcome of batch) outcome.write();
          })
          .then(
            () => {
              for (const outcome of batch) outcome.done();
            },
            (error: unknown) => {
              for (const outcome of batch) outcome.done(error ?? new Error("outcome write failed"));
            },
          );
      });
    });
  }

  private async record(
    delivery: Leased,
    leaseUntil: number,
    endpoint: EndpointRow,
    result: AttemptResult,
    attemptedAt: number,
    durationMs: number,
  ): Promise<void> {
    const attempts = delivery.attempts + 1;
    const now = this.deps.clock.now();
    const code = result.statusCode;
    /** What the attempt makes of the delivery, its endpoint as it stands when the outcome is written. */
    const decide = (deleted: boolean): { outcome: Outcome; status: "delivered" | "failed" | "dead"; dueAt: number } => {
      if (code !== null && code >= 200 && code < 300) return { outcome: "delivered", status: "delivered", dueAt: now };
      // The receiver is gone: stop the endpoint; its deliveries wait, parked, for an enable.
      if (code === 410 && !deleted) return { outcome: "disabled", status: "failed", dueAt: PARKED };
      const delay = result.retryAfterMs ?? nextRetryDelayMs(this.deps.config.retryScheduleSeconds, attempts);
      const exhausted = attempts >= this.deps.config.retryScheduleSeconds.length;
      // Deleted while the attempt was on its way: dead, as what waited for it was at the delete.
      if (deleted || exhausted || delay === undefined) return { outcome: "dead", status: "dead", dueAt: now };
      return { outcome: "retry", status: "failed", dueAt: now + delay };
    };
    let { outcome, status, dueAt } = decide(false);
    let endpointDeleted = false;
    // False when the lease ran out and the delivery was taken again: that attempt decides it.
    let applied = false;
    await this.writeOutcome(() => {
      // In the write's transaction: a delete committed since the attempt began is seen here.
      if (outcome !== "delivered" && this.sql.endpoint.get(delivery.endpoint_id)?.deleted_at != null) {
        endpointDeleted = true;
        ({ outcome, status, dueAt } = decide(true));
      }
      applied =
        this.sql.finish.run(
          status,
          attempts,
          dueAt,
          attemptedAt,
          code,
          result.error,
          status === "delivered" ? now : null,
          delivery.id,
          leaseUntil,
        ).changes > 0;
      this.sql.insertAttempt.run(
        delivery.id,
        delivery.tenant_id,
        attemptedAt,
        Math.round(durationMs),
        code,
        outcome,
        result.error,
      );
    });
    // The receiver said it is gone, whoever holds the delivery now.
    if (outcome === "disabled") this.deps.endpoints.disableGone(delivery.tenant_id, endpoint.id, 410);
    // An attempt that lost its lease decides nothing: the one that leased the delivery again
    // counts its outcome, and the success SLO counts each delivery once.
    if (!applied) return;
    const { metrics } = this.deps;
    metrics.webhookAttempts.labels({ outcome }).inc();
    // A replayed delivery, or a dead one retried by hand: its age is an operator's, not delivery
    // delay. One delivered before counts as replayed too (a replay by a process older than resent_at).
    const resent = delivery.resent_at !== null || delivery.delivered_at !== null;
    if (outcome === "delivered" && !resent)
      metrics.webhookLatency.observe(Math.max(0, now - delivery.created_at) / 1000);
    // Dead because its endpoint was deleted is an operator's doing, as the delete's own are: no dead letter.
    if (outcome === "dead" && !endpointDeleted) metrics.webhookDead.inc();
  }
}
