/// <reference lib="webworker" />
/**
 * The other half of `sync-fetch.ts`: performs each request with `fetch` on its own thread and
 * hands the answer back through the shared buffers while the script's thread waits.
 */
import type { SyncAnswer, SyncCall } from "./sync-fetch";

declare const self: Worker;
const encoder = new TextEncoder();

self.onmessage = async ({ data: call }: MessageEvent<SyncCall>) => {
  const answer = await perform(call);
  let bytes = encoder.encode(JSON.stringify(answer));
  if (bytes.length > call.data.byteLength) {
    bytes = encoder.encode(JSON.stringify({ ...failed(`answer of ${bytes.length} bytes exceeds the buffer`), ms: 0 }));
  }
  new Uint8Array(call.data).set(bytes);
  Atomics.store(call.control, 1, bytes.length);
  Atomics.store(call.control, 0, 1);
  Atomics.notify(call.control, 0);
};

async function perform(call: SyncCall): Promise<SyncAnswer> {
  const started = performance.now();
  try {
    const response = await fetch(call.url, {
      method: call.method,
      headers: call.headers,
      ...(call.body === undefined ? {} : { body: call.body }),
      signal: AbortSignal.timeout(call.timeoutMs),
    });
    const body = await response.text();
    return {
      status: response.status,
      headers: [...response.headers],
      body,
      error: "",
      ms: performance.now() - started,
    };
  } catch (error) {
    return { ...failed(error instanceof Error ? error.message : String(error)), ms: performance.now() - started };
  }
}

function failed(error: string): Omit<SyncAnswer, "ms"> {
  return { status: 0, headers: [], body: "", error };
}

self.postMessage("ready");
