/**
 * Blocking HTTP for the k6 shim: k6's `http.get` returns the response, so the script's thread
 * posts the request to a worker that fetches it, and waits on a shared buffer for the answer.
 */
export interface SyncCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
  timeoutMs: number;
  /** [0] is set to 1 when the answer is in `data`, [1] is its length in bytes. */
  control: Int32Array;
  data: SharedArrayBuffer;
}

export interface SyncAnswer {
  /** 0 when no response came (refused, timed out), as in k6. */
  status: number;
  headers: [string, string][];
  body: string;
  error: string;
  ms: number;
}

const ANSWER_BYTES = 32 * 1024 * 1024;
const decoder = new TextDecoder();

export class SyncFetch {
  private readonly control = new Int32Array(new SharedArrayBuffer(8));
  private readonly data = new SharedArrayBuffer(ANSWER_BYTES);

  private constructor(private readonly worker: Worker) {}

  /** Starts the worker and waits until it listens, so the first blocking call cannot starve it. */
  static async start(): Promise<SyncFetch> {
    const worker = new Worker(new URL("./fetch-worker.ts", import.meta.url).href);
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = () => resolve();
      worker.onerror = (event) => reject(new Error(`fetch worker: ${event.message}`));
    });
    return new SyncFetch(worker);
  }

  request(call: Omit<SyncCall, "control" | "data">): SyncAnswer {
    Atomics.store(this.control, 0, 0);
    this.worker.postMessage({ ...call, control: this.control, data: this.data } satisfies SyncCall);
    // The worker's own timeout answers first; this one only guards against a dead worker.
    if (Atomics.wait(this.control, 0, 0, call.timeoutMs + 5_000) === "timed-out") {
      return { status: 0, headers: [], body: "", error: "no answer from the fetch worker", ms: call.timeoutMs };
    }
    const length = Atomics.load(this.control, 1);
    const bytes = new Uint8Array(length);
    bytes.set(new Uint8Array(this.data, 0, length));
    return JSON.parse(decoder.decode(bytes)) as SyncAnswer;
  }

  close(): void {
    this.worker.terminate();
  }
}
