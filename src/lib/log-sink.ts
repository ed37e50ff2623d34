import type { FileSink } from "bun";

/**
 * How long a line may wait for the lines that follow it. Under load one native write per
 * event-loop turn cost ~5 % of the authenticated GET (a write and a flush each, often for a handful
 * of lines); one every few milliseconds carries hundreds.
 */
const FLUSH_AFTER_MS = 5;
/** A burst this large goes out at once rather than waiting for the timer. */
const MAX_PENDING_CHARS = 256 * 1024;

/**
 * Where log lines go: Bun's native buffered writer on stdout, fed at most every FLUSH_AFTER_MS.
 * Lines are joined in a JS string first: one native write per line cost ~0.3 µs each, a string
 * append a few ns. (pino's async destination costs more per line than building it: one write
 * call each, and it recounts the bytes of its whole pending buffer on every line.)
 */
export class StdoutSink {
  private readonly writer: FileSink;
  private pending = "";

  constructor(fd = 1) {
    this.writer = Bun.file(fd).writer({ highWaterMark: 64 * 1024 });
  }

  write(line: string): void {
    if (this.pending === "") setTimeout(this.flushSoon, FLUSH_AFTER_MS);
    this.pending += line;
    if (this.pending.length > MAX_PENDING_CHARS) this.drain();
  }

  private readonly flushSoon = () => {
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
}
