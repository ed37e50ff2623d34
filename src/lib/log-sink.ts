import type { FileSink } from "bun";

/**
 * Where log lines go: Bun's native buffered writer on stdout, flushed once per event-loop turn.
 * Under load many lines share one write; when idle a line is out within the same turn. (pino's
 * async destination costs more per line than building it: one write call each, and it recounts
 * the bytes of its whole pending buffer on every line.)
 */
export class StdoutSink {
  private readonly writer: FileSink;
  private scheduled = false;

  constructor(fd = 1) {
    this.writer = Bun.file(fd).writer({ highWaterMark: 64 * 1024 });
  }

  write(line: string): void {
    this.writer.write(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  private readonly flushSoon = () => {
    this.scheduled = false;
    void this.writer.flush();
  };

  /** Drains what is buffered (pino calls this from `logger.flush(cb)`), so the last lines survive exit. */
  flush(done?: (error?: Error) => void): void {
    Promise.resolve(this.writer.flush()).then(
      () => done?.(),
      (error: Error) => done?.(error),
    );
  }
}
