/**
 * The WAL checkpointer's thread (see checkpointer.ts): its own connection to the database file,
 * copying committed WAL frames into the database on a timer. A checkpoint reads and writes pages
 * and fsyncs the database file; on this thread none of that stalls a request.
 */
import { Database } from "bun:sqlite";

declare const self: Worker;

export interface CheckpointStart {
  readonly file: string;
  readonly intervalMs: number;
}

/** What each checkpoint reports back: PRAGMA wal_checkpoint's three columns. */
export interface CheckpointReport {
  readonly busy: number;
  readonly log: number;
  readonly checkpointed: number;
}

let db: Database | undefined;
let timer: Timer | undefined;
let lastError: string | undefined;

function checkpoint(database: Database): void {
  // PASSIVE never waits for the writer or readers: it copies what it can and leaves the rest.
  const row = database.query<CheckpointReport, []>("PRAGMA wal_checkpoint(PASSIVE)").get();
  if (row && row.log > 0) self.postMessage(row);
}

self.onmessage = (event: MessageEvent<CheckpointStart | "stop">) => {
  if (event.data === "stop") {
    clearInterval(timer);
    db?.close();
    db = undefined;
    self.postMessage("stopped");
    return;
  }
  const { file, intervalMs } = event.data;
  const database = new Database(file, { readwrite: true, strict: true });
  db = database;
  self.postMessage("started");
  timer = setInterval(() => {
    try {
      checkpoint(database);
      lastError = undefined;
    } catch (error) {
      // Once per distinct failure, not every interval.
      const message = (error as Error).message;
      if (message !== lastError) self.postMessage({ error: message });
      lastError = message;
    }
  }, intervalMs);
};
