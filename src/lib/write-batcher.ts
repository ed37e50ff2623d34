import type { Database } from "bun:sqlite";

interface Job {
  readonly work: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit. Writes queued in the same event-loop turn share one transaction, each inside its
 * own savepoint so one failing write rolls back alone; every promise settles only after the
 * shared COMMIT, so a 2xx still means "on disk". Idle, a write commits on the next turn; under
 * load, one commit carries many: the per-commit I/O (the WAL frames) is paid once per batch.
 */
export class WriteBatcher {
  private queue: Job[] = [];
  private scheduled = false;

  constructor(private readonly sqlite: Database) {}

  run<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.sqlite
        .transaction(() => {
          for (const job of batch) {
            try {
              outcomes.push({ ok: true, value: this.sqlite.transaction(job.work)() });
            } catch (error) {
              outcomes.push({ ok: false, value: error });
            }
          }
        })
        .immediate();
    } catch (error) {
      // The COMMIT itself failed (disk full, I/O error): nothing of the batch is on disk.
      for (const job of batch) job.reject(error);
      return;
    }
    batch.forEach((job, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) job.resolve(outcome.value);
      else job.reject(outcome?.value);
    });
  };
}
