import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { waitFor } from "./ports";

const ROOT = join(import.meta.dir, "..", "..");
export const MAIN = join(ROOT, "src", "main.ts");

export interface TestServer {
  readonly url: string;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly dataDir: string;
  /** Every JSON log line the process has written so far. */
  readonly logs: Record<string, unknown>[];
  /** What the process has written to stderr so far. */
  stderr(): string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Sends the signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

export interface ServerOptions {
  env?: Record<string, string>;
  /** Command to run instead of `bun src/main.ts` (e.g. the compiled binary). */
  command?: string[];
  dataDir?: string;
}

/** Starts the real service as a child process on a free loopback port and waits until it listens. */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "warden-data-"));
  const proc = Bun.spawn([...(options.command ?? [process.execPath, MAIN]), "serve"], {
    cwd: ROOT,
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "info", ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  void collectLines(proc.stdout, (line) => {
    try {
      logs.push(JSON.parse(line));
    } catch {
      logs.push({ raw: line });
    }
  });
  void collectLines(proc.stderr, (line) => {
    stderr += `${line}\n`;
  });

  let url = "";
  try {
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}: ${stderr}`);
        const line = logs.find((entry) => typeof entry.url === "string");
        if (line) url = String(line.url).replace(/\/$/, "");
        return url !== "";
      },
      15_000,
      "the server to listen",
    );
  } catch (error) {
    proc.kill("SIGKILL");
    throw error;
  }

  return {
    url,
    proc,
    dataDir,
    logs,
    stderr: () => stderr,
    fetch: (path, init) => fetch(`${url}${path}`, init),
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null) proc.kill(signal);
      const code = await proc.exited;
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

async function collectLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      const line = buffer.slice(0, newline).trim();
      if (line) onLine(line);
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
    }
  }
  if (buffer.trim()) onLine(buffer.trim());
}
