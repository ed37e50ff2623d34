/** Child processes and the scratch directory of a run, and making sure neither outlives it. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

const STOP_GRACE_MS = 3_000;

const children = new Set<Subprocess>();
let tempDir: string | undefined;
let interrupted = false;
let cleaning: Promise<void> | undefined;

export function spawnTracked<Out extends "ignore" | "pipe">(
  cmd: string[],
  options: { env?: Record<string, string>; stdout: Out },
): Subprocess<"ignore", Out, "pipe"> {
  const child = Bun.spawn(cmd, { env: options.env, stdout: options.stdout, stderr: "pipe", stdin: "ignore" });
  children.add(child);
  child.exited.finally(() => children.delete(child));
  return child;
}

export function streamText(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

/** One per run; cleanup() removes it. */
export function makeTempDir(prefix: string): string {
  tempDir ??= mkdtempSync(join(tmpdir(), prefix));
  return tempDir;
}

function removeTempDir(): void {
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
}

async function stopChild(child: Subprocess): Promise<void> {
  child.kill("SIGTERM");
  const exited = await Promise.race([child.exited.then(() => true), Bun.sleep(STOP_GRACE_MS).then(() => false)]);
  if (!exited) child.kill("SIGKILL");
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...children].map(stopChild));
    removeTempDir();
  })();
  return cleaning;
}

/** Set on SIGINT/SIGTERM: killing wrk then makes the run fail, and that failure is not news. */
export function wasInterrupted(): boolean {
  return interrupted;
}

export function installExitHandlers(): void {
  // Last resort if we exit without awaiting cleanup(): never leave a server holding a core.
  process.on("exit", () => {
    for (const child of children) child.kill("SIGKILL");
    removeTempDir();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      interrupted = true;
      console.error(`\nbench: ${signal}, stopping servers`);
      cleanup().finally(() => process.exit(130));
    });
  }
}
