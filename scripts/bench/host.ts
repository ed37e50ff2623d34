/**
 * What the machine offers a run: the tools on PATH, cores to pin to and loopback ports.
 * Free of side effects, so bench-baseline.ts can import it.
 */
import { availableParallelism } from "node:os";

export const LOOPBACK = "127.0.0.1";
export const SERVER_CORE = 0;
export const WRK_CORE = 1;
export const BENCH_CORES = [SERVER_CORE, WRK_CORE] as const;

export interface Pinning {
  server: string[];
  wrk: string[];
}

export function requireTools(): void {
  const missing = ["wrk", "taskset"].filter((tool) => !Bun.which(tool));
  if (missing.length > 0) {
    throw new BenchError(
      `${missing.join(" and ")} not found on PATH. Install with: sudo apt-get install ${missing
        .map((tool) => (tool === "taskset" ? "util-linux" : tool))
        .join(" ")}`,
    );
  }
}

/** With one core, pinning both sides to it would measure wrk contending with the server. */
export function pinning(): Pinning | undefined {
  if (availableParallelism() < 2) {
    console.warn("bench: fewer than 2 CPUs available; running unpinned, numbers will be noisy");
    return undefined;
  }
  return { server: ["taskset", "-c", String(SERVER_CORE)], wrk: ["taskset", "-c", String(WRK_CORE)] };
}

/**
 * Ports handed out by this run. The kernel gives a free port for port 0, but once the probe
 * closes it may offer the same one again before the server it went to listens: a run once
 * started its service on its baseline's port. Another process taking it meanwhile stays possible.
 */
const handedOut = new Set<number>();

export function freePort(): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const probe = Bun.serve({ hostname: LOOPBACK, port: 0, fetch: () => new Response() });
    const port = probe.port;
    probe.stop(true);
    if (port === undefined) break;
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new BenchError("could not allocate a loopback port");
}
/** A failure the harness explains itself: printed as its message alone, without a stack. */
export class BenchError extends Error {}
