export class DeadlineExceeded extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "DeadlineExceeded";
  }
}

interface Pending {
  /** performance.now() at which it expires. */
  readonly at: number;
  settled: boolean;
  readonly reject: (error: DeadlineExceeded) => void;
}

/**
 * Deadlines that all last `ms`. They end in the order they began, so one timer, armed for the
 * oldest pending one, serves them all: a deadline costs a queue entry and one promise instead of
 * a timer, a second promise, a race and a `finally` (which showed per request on the Redis paths).
 */
export class DeadlineQueue {
  private queue: Pending[] = [];
  /** Index of the oldest entry still in `queue`; the entries before it are settled. */
  private head = 0;
  private timer: Timer | undefined;
  private readonly expire = () => this.fire();

  constructor(readonly ms: number) {}

  /** `promise`'s outcome, or a rejection with DeadlineExceeded once `ms` have passed; whichever comes first. */
  within<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { at: performance.now() + this.ms, settled: false, reject };
      this.queue.push(pending);
      if (this.timer === undefined) this.arm(this.ms);
      promise.then(
        (value) => {
          this.settle(pending);
          resolve(value);
        },
        (error) => {
          this.settle(pending);
          reject(error);
        },
      );
    });
  }

  /** How many deadlines are still running. */
  get size(): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length; i++) if (!this.queue[i]?.settled) n++;
    return n;
  }

  /**
   * Answers mostly come in the order they were asked (one connection, pipelined), so settled
   * entries are dropped from the front right away: the queue stays as short as what is in flight.
   */
  private settle(pending: Pending): void {
    pending.settled = true;
    if (this.queue[this.head] !== pending) return;
    const queue = this.queue;
    let head = this.head;
    while (head < queue.length && (queue[head] as Pending).settled) head++;
    if (head === queue.length) {
      queue.length = 0;
      this.head = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      this.queue = queue.slice(head);
      this.head = 0;
    } else {
      this.head = head;
    }
  }

  private arm(delay: number): void {
    // Unref'd: a pending deadline never keeps the process alive by itself.
    this.timer = setTimeout(this.expire, delay);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    const now = performance.now();
    const queue = this.queue;
    let head = this.head;
    while (head < queue.length) {
      const pending = queue[head] as Pending;
      if (!pending.settled) {
        if (pending.at > now) break;
        pending.settled = true;
        pending.reject(new DeadlineExceeded(this.ms));
      }
      head++;
    }
    if (head === queue.length) {
      this.queue = [];
      this.head = 0;
      return;
    }
    this.queue = queue.slice(head);
    this.head = 0;
    // Timers may fire a little early; the remainder is re-armed, never less than 1 ms.
    this.arm(Math.max(1, (this.queue[0] as Pending).at - now));
  }
}

const queues = new Map<number, DeadlineQueue>();

/** `promise`, or a rejection with DeadlineExceeded after `ms`: a hung dependency must not hold a request. */
export function withinDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let queue = queues.get(ms);
  if (queue === undefined) {
    queue = new DeadlineQueue(ms);
    queues.set(ms, queue);
  }
  return queue.within(promise);
}

/** `promise`, or the signal's reason once it aborts first. */
export function withSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}
