/** A throwaway redis-server for the rows that need one: loopback, no persistence, tracked for cleanup. */
import { BenchError, freePort, LOOPBACK } from "./host.ts";
import { spawnTracked } from "./processes.ts";

const READY_TIMEOUT_MS = 5000;

export async function startBenchRedis(dir: string): Promise<string> {
  const binary = Bun.which("redis-server");
  if (!binary) throw new BenchError("redis-server not found on PATH. Install with: sudo apt-get install redis-server");
  const port = freePort();
  // Unpinned: the server core is the one under test, and wrk has the other to itself.
  spawnTracked([binary, "--port", String(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no", "--dir", dir], {
    stdout: "ignore",
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      const socket = await Bun.connect({ hostname: LOOPBACK, port, socket: { data() {} } });
      socket.end();
      return `redis://${LOOPBACK}:${port}`;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new BenchError(`redis-server did not listen on ${port} within ${READY_TIMEOUT_MS / 1000}s`);
}
