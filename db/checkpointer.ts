/**
 * WAL checkpoints off the request thread. SQLite's default has the connection that commits the
 * 1000th WAL page copy the log into the database and fsync it, inside that commit: a write
 * request (and every request queued behind it on the event loop) stalls for milliseconds every
 * few thousand writes. A server process instead checkpoints on a thread of its own
 * (checkpoint-thread.ts, PASSIVE: it never blocks the writer), and keeps the inline checkpoint
 * only as a backstop at a much larger log, for when the thread falls behind or fails to start.
 */
import type { Database } from "bun:sqlite";
import type { CheckpointReport, CheckpointStart } from "./checkpoint-thread";

/** SQLite's default: what a connection without the thread checkpoints at. */
const INLINE_AUTOCHECKPOINT_PAGES = 1000;
/** With the thread running: 64 MiB of 4 KiB pages before a commit checkpoints inline after all. */
const BACKSTOP_AUTOCHECKPOINT_PAGES = 16_384;
/** A log file grown large under a burst is cut back to this when it restarts. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 500;
const STOP_TIMEOUT_MS = 2000;

/**
 * In a compiled binary every module is bundled into one file, and the thread is there only as a
 * second entrypoint (package.json "build"), stored at its path from the entrypoints' common
 * directory (the repository root) under Bun's embedded root.
 */
function threadModule(): string {
  if (import.meta.url.startsWith("file:///$bunfs/")) return "/$bunfs/root/db/checkpoint-thread.ts";
  return new URL("./checkpoint-thread.ts", import.meta.url).href;
}

export interface CheckpointerEvents {
  /** The thread has its connection open. */
  started?(): void;
  /** After each checkpoint that found frames in the log. */
  checkpointed?(report: CheckpointReport): void;
  /** The thread could not start or a checkpoint failed; inline checkpoints are back on after a start failure. */
  failed(message: string): void;
}

export interface Checkpointer {
  readonly name: string;
  stop(): Promise<void>;
}

export function startCheckpointer(
  sqlite: Database,
  file: string,
  events: CheckpointerEvents,
  intervalMs = DEFAULT_CHECKPOINT_INTERVAL_MS,
): Checkpointer {
  const inline = () => sqlite.run(`PRAGMA wal_autocheckpoint = ${INLINE_AUTOCHECKPOINT_PAGES}`);
  sqlite.run(`PRAGMA wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
  sqlite.run(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  // `ref: false`: the thread must never be what keeps a process alive (shutdown stops it; tests may not).
  const thread = new Worker(threadModule(), { ref: false });
  let stopped: (() => void) | undefined;
  thread.onmessage = (event: MessageEvent<CheckpointReport | { error: string } | "started" | "stopped">) => {
    const data = event.data;
    if (data === "started") events.started?.();
    else if (data === "stopped") stopped?.();
    else if ("error" in data) events.failed(data.error);
    else events.checkpointed?.(data);
  };
  let dead = false;
  thread.onerror = (event) => {
    dead = true;
    inline();
    events.failed(event.message);
  };
  thread.postMessage({ file, intervalMs } satisfies CheckpointStart);

  return {
    name: "sqlite-checkpointer",
    async stop() {
      if (dead) return;
      // The timer also keeps the event loop alive while the reply is awaited: at shutdown
      // nothing else may be left to, and the process would end before closing SQLite.
      let timer: Timer | undefined;
      const done = new Promise<void>((resolve) => {
        stopped = resolve;
        timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      });
      thread.postMessage("stop");
      await done;
      clearTimeout(timer);
      thread.terminate();
      inline();
    },
  };
}
