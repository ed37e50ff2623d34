/** Starts the two servers under test, each in its own pinned process, and waits until they answer. */
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Target } from "./endpoint.ts";
import { BenchError, freePort, LOOPBACK, type Pinning } from "./host.ts";
import { spawnTracked, streamText } from "./processes.ts";

const SCRIPTS_DIR = join(import.meta.dir, "..");
const REPO_ROOT = join(SCRIPTS_DIR, "..");
const READY_TIMEOUT_MS = 15_000;
/** The Node.js the hello-world row runs on: the one on PATH unless BENCH_NODE names another. */
const NODE = process.env.BENCH_NODE ?? "node";

export interface Server {
  name: string;
  url: string;
  readyPath: string;
  child: Subprocess<"ignore", "ignore", "pipe">;
}

export interface Launch {
  name: string;
  /** What runs `args` (default: this Bun). */
  executable?: string;
  readyPath: string;
  args: (port: number) => string[];
  env?: (port: number) => Record<string, string>;
}

export function startServer(pin: Pinning | undefined, launch: Launch): Server {
  const port = freePort();
  const cmd = [...(pin?.server ?? []), launch.executable ?? process.execPath, ...launch.args(port)];
  // The service's access log (one JSON line per request) stays on, as in production, but goes nowhere.
  const child = spawnTracked(cmd, { env: launch.env?.(port), stdout: "ignore" });
  return { name: launch.name, readyPath: launch.readyPath, url: `http://${LOOPBACK}:${port}`, child };
}

/** The limit the limiter rows run under: high enough never to refuse within a run. */
const UNREACHED_LIMIT = "1000000";

/**
 * The baseline, a Node.js hello-world, a bare Redis-backed POST, the service as the other rows measure it (no Redis, no limiter), and the
 * variants the feedback, rate-limit and lean-path rows compare: with Redis, with the limiter in
 * process, with the limiter in Redis, and without the lean path (limiter off and in process). All services share one DATA_DIR, so one bench token works on each.
 */
export async function startServers(
  pin: Pinning | undefined,
  dataDir: string,
  redisUrl: string,
): Promise<Record<Target, Server>> {
  const baseline = startServer(pin, {
    name: "baseline (scripts/bench-baseline.ts)",
    readyPath: "/",
    args: (port) => [join(SCRIPTS_DIR, "bench-baseline.ts"), String(port)],
  });
  const nodeHello = startServer(pin, {
    name: "Node.js hello-world (scripts/bench-node-hello.mjs)",
    executable: NODE,
    readyPath: "/",
    args: (port) => [join(SCRIPTS_DIR, "bench-node-hello.mjs"), String(port)],
  });
  const redisFloor = startServer(pin, {
    name: "Redis floor (scripts/bench-redis-floor.ts)",
    readyPath: "/",
    args: (port) => [join(SCRIPTS_DIR, "bench-redis-floor.ts"), String(port), redisUrl],
  });
  const service = startServer(pin, {
    name: "service (src/main.ts serve)",
    readyPath: "/health",
    args: () => [join(REPO_ROOT, "src", "main.ts"), "serve"],
    env: (port) => serviceEnv(port, dataDir),
  });
  // The first service creates the database, key ring and master key; the others open them.
  await waitUntilReady(service);
  const variant = (name: string, env: Record<string, string>) =>
    startServer(pin, {
      name: `service ${name} (src/main.ts serve)`,
      readyPath: "/health",
      args: () => [join(REPO_ROOT, "src", "main.ts"), "serve"],
      // One dispatcher for the shared data dir: another would deliver the main service's
      // webhooks on the same core, under a variant that is not the one being measured.
      env: (port) => ({ ...serviceEnv(port, dataDir), WEBHOOK_DISPATCH: "false", ...env }),
    });
  const limited = { RATE_LIMIT_ENABLED: "true", RATE_LIMIT_PER_MINUTE: UNREACHED_LIMIT };
  return {
    baseline,
    "node-hello": nodeHello,
    "redis-floor": redisFloor,
    service,
    "service-redis": variant("with Redis", { REDIS_URL: redisUrl }),
    "service-limited": variant("with the in-process limiter", limited),
    "service-redis-limited": variant("with the Redis limiter", { ...limited, REDIS_URL: redisUrl }),
    // The lean path's gain, in the same run: every request through Elysia.
    "service-elysia": variant("without the lean path", { HTTP_LEAN_PATH: "false" }),
    "service-limited-elysia": variant("with the in-process limiter, without the lean path", {
      ...limited,
      HTTP_LEAN_PATH: "false",
    }),
  };
}

/** A clean environment, so a developer's REDIS_URL or NODE_ENV cannot silently change the numbers. */
export function serviceEnv(port: number, dataDir: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    HOST: LOOPBACK,
    PORT: String(port),
    DATA_DIR: dataDir,
    LOG_LEVEL: "info",
    // Every request comes from one IP; a limiter would turn each row into a measurement of 429s.
    RATE_LIMIT_ENABLED: "false",
    // The rows replay one login's token; a full run with rounds outlasts the default 15 minutes.
    ACCESS_TOKEN_TTL: "3h",
  };
}

export async function waitUntilReady(server: Server): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) {
      const stderr = await streamText(server.child.stderr);
      throw new BenchError(`${server.name} exited with code ${server.child.exitCode} before answering:\n${stderr}`);
    }
    try {
      const response = await fetch(server.url + server.readyPath, { signal: AbortSignal.timeout(1000) });
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await Bun.sleep(100);
  }
  throw new BenchError(`${server.name} did not answer 200 on ${server.readyPath} within ${READY_TIMEOUT_MS / 1000}s`);
}
