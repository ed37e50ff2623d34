import type { Database } from "bun:sqlite";
import type { Clock } from "../../lib/clock";
import type { Logger } from "../../lib/logger";
import type { Worker } from "../../lib/worker";
import type { Metrics } from "../../plugins/metrics";
import { type ChainPosition, type ChainReport, chainStart, checkEnd, readChainEnd, verifyLinks } from "./verify";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface VerifierOptions {
  /** Between passes; each pass checks only what was appended since the last one. */
  readonly intervalMs: number;
  /** How often a pass starts over from the chain's start, to catch edits to old events. */
  readonly fullEveryMs: number;
  /** Links per synchronous step; the event loop serves requests between steps. */
  readonly chunk: number;
}

export const DEFAULT_VERIFIER_OPTIONS: VerifierOptions = {
  intervalMs: 5 * 60_000,
  fullEveryMs: 24 * 3600_000,
  chunk: 2000,
};

/**
 * Verifies the audit chain and publishes the verdict (`audit_chain_verified`,
 * `audit_chain_last_verify_timestamp_seconds`). In the background it resumes after the last
 * verified link, so a pass costs what was appended since; once a day it starts over.
 */
export class ChainVerifier {
  private verified: ChainPosition | undefined;
  private lastFullAt = Number.NEGATIVE_INFINITY;
  private requested: Promise<ChainReport> | undefined;

  constructor(
    private readonly sqlite: Database,
    private readonly key: Uint8Array,
    private readonly metrics: Metrics,
    private readonly clock: Clock,
    private readonly options: VerifierOptions = DEFAULT_VERIFIER_OPTIONS,
  ) {}

  /**
   * The whole chain, now (GET /v1/audit/verify), a chunk at a time with requests served in
   * between: in one go it held the event loop ~6.7 µs a link, ~7 s for a million events, and
   * any tenant's admin may ask. Whoever asks while a walk runs shares it.
   */
  verifyAll(): Promise<ChainReport> {
    this.requested ??= this.pass(nextTurn, true).finally(() => {
      this.requested = undefined;
    });
    return this.requested;
  }

  /** One background pass: incremental unless a full one is due (or the last one failed), or `full`. */
  async pass(yieldBetweenChunks: () => Promise<void> = () => Bun.sleep(0), full = false): Promise<ChainReport> {
    full ||= this.verified === undefined || this.clock.now() - this.lastFullAt >= this.options.fullEveryMs;
    const end = readChainEnd(this.sqlite);
    let { start, brokenAt } = chainStart(this.sqlite, this.key);
    let position = full ? start : (this.verified as ChainPosition);
    const from = position.seq;
    let checked = 0;
    for (;;) {
      if (brokenAt) return this.failed({ ok: false, checked, from, brokenAt });
      // Retention may archive past our position between steps; the chain then restarts at its checkpoint.
      if (start.seq > position.seq) position = start;
      const step = verifyLinks(this.sqlite, this.key, position, this.options.chunk);
      checked += step.checked;
      if (!step.ok) return this.failed({ ...step, checked, from });
      if (step.head) position = step.head;
      if (step.checked < this.options.chunk) break;
      await yieldBetweenChunks();
      ({ start, brokenAt } = chainStart(this.sqlite, this.key));
    }
    const headBroken = checkEnd(this.sqlite, this.key, end, position, start);
    if (headBroken) return this.failed({ ok: false, checked, from, brokenAt: headBroken, head: position });
    this.verified = position;
    if (full) this.lastFullAt = this.clock.now();
    this.publish(true);
    return { ok: true, checked, from, head: position };
  }

  private failed(report: ChainReport): ChainReport {
    this.verified = undefined;
    this.publish(false);
    return report;
  }

  private publish(ok: boolean): void {
    this.metrics.auditChainVerified.set(ok ? 1 : 0);
    this.metrics.auditChainLastVerify.set(this.clock.now() / 1000);
  }
}

class Stopped extends Error {}

/** Runs a pass at start-up and every `intervalMs`; never two at once; stop() ends a pass between chunks. */
export function startChainVerification(verifier: ChainVerifier, intervalMs: number, log: Logger): Worker {
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const yieldUnlessStopped = async () => {
    await Bun.sleep(0);
    if (stopped) throw new Stopped();
  };
  const run = () => {
    running ??= verifier
      .pass(yieldUnlessStopped)
      .then((report) => {
        if (!report.ok) log.error({ broken_at: report.brokenAt }, "audit chain verification found a broken link");
      })
      .catch((error: Error) => {
        if (!(error instanceof Stopped)) log.error({ err: error }, "audit chain verification failed");
      })
      .finally(() => {
        running = undefined;
      });
  };
  run();
  const timer = setInterval(run, intervalMs);
  return {
    name: "audit-chain-verification",
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
