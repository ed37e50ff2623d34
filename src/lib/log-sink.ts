import { writeSync } from "node:fs";
import type { FileSink } from "bun";

/**
 * How long a line may wait for the lines that follow it under load. One native write per
 * event-loop turn cost ~5 % of the authenticated GET (a write and a flush each, often for a
 * handful of lines); one every few milliseconds carries hundreds.
 */
const FLUSH_AFTER_MS = 5;
/** A burst this large goes out at once rather than waiting for the timer. */
const MAX_PENDING_CHARS = 256 * 1024;

/** Every sink, so whatever is pending is written when the process exits, crash or not. */
const sinks = new Set<StdoutSink>();
let drainsAtExit = false;

/**
 * Where log lines go: Bun's native buffered writer on stdout. A line after a quiet spell goes out
 * at the end of its event-loop turn; under load, lines are written together at most every
 * FLUSH_AFTER_MS. Lines are joined in a JS string first: one native write per line cost ~0.3 µs
 * each, a string append a few ns. (pino's async destination costs more per line than building
 * it: one write call each, and it recounts the bytes of its whole pending buffer on every line.)
 * At exit (a crash, `process.exit`) what is pending is written synchronously.
 */
export class StdoutSink {
  private readonly writer: FileSink;
  private pending = "";
  private lastFlushAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly fd = 1) {
    this.writer = Bun.file(fd).writer({ highWaterMark: 64 * 1024 });
    sinks.add(this);
    if (!drainsAtExit) {
      drainsAtExit = true;
      process.on("exit", () => {
        for (const sink of sinks) sink.drainAtExit();
      });
    }
  }

  write(line: string): void {
    if (this.pending === "") {
      const quiet = performance.now() - this.lastFlushAt;
      if (quiet >= FLUSH_AFTER_MS) setImmediate(this.flushSoon);
      else setTimeout(this.flushSoon, FLUSH_AFTER_MS - quiet);
    }
    this.pending += line;
    if (this.pending.length > MAX_PENDING_CHARS) this.drain();
  }

  private readonly flushSoon = () => {
    this.lastFlushAt = performance.now();
    this.drain();
    void this.writer.flush();
  };

  private drain(): void {
    if (this.pending === "") return;
    this.writer.write(this.pending);
    this.pending = "";
  }

  /** Drains what is buffered (pino calls this from `logger.flush(cb)`), so the last lines survive exit. */
  flush(done?: (error?: Error) => void): void {
    this.drain();
    Promise.resolve(this.writer.flush()).then(
      () => done?.(),
      (error: Error) => done?.(error),
    );
  }

  /** The event loop will not run again: what the writer holds, then what is pending, written now. */
  private drainAtExit(): void {
    try {
      void this.writer.flush();
      if (this.pending !== "") writeSync(this.fd, this.pending);
    } catch {
      // A closed stdout at exit: nothing left to write to.
    }
    this.pending = "";
  }
}
