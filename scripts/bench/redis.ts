/** A throwaway redis-server for the rows that need one: loopback, no persistence, tracked for cleanup. */
import { BenchError, freePort, LOOPBACK, type Pinning } from "./host.ts";
import { spawnTracked } from "./processes.ts";

const READY_TIMEOUT_MS = 5000;

export async function startBenchRedis(dir: string, pin: Pinning | undefined): Promise<string> {
  const binary = Bun.which("redis-server");
  if (!binary) throw new BenchError("redis-server not found on PATH. Install with: sudo apt-get install redis-server");
  const port = freePort();
  // On wrk's core: in production Redis is another host, so it must not take the server's core
  // (unpinned, the scheduler put it there often enough to cost the feedback row req/s and p99).
  spawnTracked(
    [
      ...(pin?.wrk ?? []),
      binary,
      "--port",
      String(port),
      "--bind",
      LOOPBACK,
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
    ],
    {
      stdout: "ignore",
    },
  );
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
