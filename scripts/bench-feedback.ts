/**
 * CPU per `POST /v1/feedback` into a real Redis, in process (no sockets to the client, no wrk):
 * through what Bun.serve calls (`appFetch`), limiter off, a new subject per request, 64 requests
 * in flight and an event-loop turn between batches as under wrk, so the store batches like the
 * server's. Reports process CPU (user + sys) and wall time per request, and Redis's own CPU per
 * request. Rounds alternate between checkouts so the VM's drift hits each alike: use it to decide
 * between two versions of the feedback path, and bench.ts to report.
 *
 *   bun scripts/bench-feedback.ts [--rounds=N] [--requests=N] [--against=<checkout>]
 *
 * Each checkout runs in a child process of its own, on core 0 (opening a checkout's Redis client
 * changes a process-wide prototype, src/redis.ts, which would speed up the other one too);
 * redis-server runs on core 1, as in bench.ts. `--against`: another checkout (e.g. `git archive main | tar -x` into
 * a directory with node_modules linked).
 */
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Subprocess, spawn } from "bun";
import { pinning } from "./bench/host.ts";
import { cleanup, installExitHandlers, makeTempDir } from "./bench/processes.ts";
import { startBenchRedis } from "./bench/redis.ts";

const option = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const ROUNDS = Number(option("rounds") ?? 7);
const REQUESTS = Number(option("requests") ?? 12_800);
const AGAINST = option("against");
const CHILD = option("child");
const PASSWORD = "correct horse battery staple";
const IN_FLIGHT = 64;

interface Sample {
  cpuUs: number;
  wallUs: number;
}

/** One checkout's app on a temp DATA_DIR and the given Redis; answers "round" on stdin with a Sample line. */
async function child(root: string, redisUrl: string, tenant: string): Promise<void> {
  const load = (path: string) => import(join(root, path));
  const [{ createApp, appFetch }, { loadConfig }, { createLogger }, { StdoutSink }, { credentialsFor }, { openDeps }] =
    await Promise.all([
      load("src/app.ts"),
      load("src/config.ts"),
      load("src/lib/logger.ts"),
      load("src/lib/log-sink.ts"),
      load("src/modules/admin/identity.ts"),
      load("src/runtime.ts"),
    ]);
  const dataDir = mkdtempSync(join(tmpdir(), "warden-feedback-bench-"));
  const env = { DATA_DIR: dataDir, RATE_LIMIT_ENABLED: "false", WEBHOOK_DISPATCH: "false", REDIS_URL: redisUrl };
  const deps = await openDeps(loadConfig(env), createLogger("info", new StdoutSink(openSync("/dev/null", "w"))));
  const started = Date.now();
  while (deps.redis?.status !== "ready") {
    if (Date.now() - started > 5000) throw new Error(`redis at ${redisUrl} not ready`);
    await Bun.sleep(20);
  }
  const app = createApp(deps);
  const handle: (request: Request) => Response | Promise<Response> = appFetch ? appFetch(app, deps) : app.handle;
  const credentials = await credentialsFor(PASSWORD);
  deps.db.transaction((tx: unknown) => {
    deps.security.identity.ensureTenant(tx, tenant);
    deps.security.identity.createUser(tx, { tenantId: tenant, email: "a@bench.test", role: "admin", credentials });
  });
  const login = await handle(
    new Request("http://localhost/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "password", tenant, username: "a@bench.test", password: PASSWORD }),
    }),
  );
  const { access_token } = (await login.json()) as { access_token: string };
  const headers = { authorization: `Bearer ${access_token}`, "content-type": "application/json" };
  let subject = 0;
  const one = async () => {
    const body = `{"subject_type":"alert","subject_id":"bench-${subject++}","verdict":"useful","rating":4}`;
    const response = await handle(new Request("http://localhost/v1/feedback", { method: "POST", headers, body }));
    if (response.status !== 202) throw new Error(`feedback answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  };
  const yieldTurn = () => new Promise<void>((done) => setImmediate(done));
  const round = async (): Promise<Sample> => {
    const cpu = process.cpuUsage();
    const begun = Bun.nanoseconds();
    for (let sent = 0; sent < REQUESTS; sent += IN_FLIGHT) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < IN_FLIGHT; i++) batch.push(one());
      await Promise.all(batch);
      await yieldTurn();
    }
    const used = process.cpuUsage(cpu);
    return { cpuUs: (used.user + used.system) / REQUESTS, wallUs: (Bun.nanoseconds() - begun) / 1000 / REQUESTS };
  };
  if ((deps.feedback.spool?.depth ?? 0) !== 0) throw new Error("feedback spooled: Redis did not take the writes");
  console.log("ready");
  for await (const line of console) {
    if (line === "round") console.log(JSON.stringify(await round()));
    else break;
  }
  deps.redis?.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
}

/** A child's stdout, line by line. */
function lines(proc: Subprocess<"pipe", "pipe", "inherit">): () => Promise<string> {
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return async () => {
    for (;;) {
      const end = buffered.indexOf("\n");
      if (end >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("a benchmark child exited early");
      buffered += decoder.decode(value, { stream: true });
    }
  };
}

async function redisCpuSeconds(url: string): Promise<number> {
  const { Redis } = await import("ioredis");
  const probe = new Redis(url);
  try {
    const info = await probe.info("cpu");
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
    return field("used_cpu_user") + field("used_cpu_sys");
  } finally {
    probe.disconnect();
  }
}

async function main(): Promise<void> {
  installExitHandlers();
  try {
    const pin = pinning();
    const redisUrl = await startBenchRedis(makeTempDir("warden-feedback-bench-"), pin);
    const checkouts = [
      { name: "this", root: resolve(import.meta.dir, "..") },
      ...(AGAINST ? [{ name: "against", root: resolve(AGAINST) }] : []),
    ];
    const children = checkouts.map(({ name, root }) => {
      const proc = spawn(
        [
          ...(pin?.server ?? []),
          process.execPath,
          import.meta.path,
          `--child=${root}`,
          `--requests=${REQUESTS}`,
          `--redis=${redisUrl}`,
          `--tenant=bench-${name}`,
        ],
        { stdin: "pipe", stdout: "pipe", stderr: "inherit" },
      );
      return { name, proc, next: lines(proc), samples: [] as (Sample & { redisUs: number })[] };
    });
    try {
      for (const c of children) if ((await c.next()) !== "ready") throw new Error(`${c.name} did not start`);
      for (let round = 0; round <= ROUNDS; round++) {
        for (const c of children) {
          const before = await redisCpuSeconds(redisUrl);
          c.proc.stdin.write("round\n");
          c.proc.stdin.flush();
          const sample = JSON.parse(await c.next()) as Sample;
          const redisUs = (((await redisCpuSeconds(redisUrl)) - before) * 1e6) / REQUESTS;
          if (round > 0) c.samples.push({ ...sample, redisUs }); // round 0 warms up: JIT and caches
        }
      }
    } finally {
      for (const c of children) {
        c.proc.stdin.write("quit\n");
        c.proc.stdin.end();
      }
      await Promise.all(children.map((c) => c.proc.exited));
    }
    for (const { name, samples } of children) {
      const cpu = samples.map((s) => s.cpuUs);
      console.log(
        `${`${name} POST /v1/feedback`.padEnd(28)} CPU ${median(cpu).toFixed(2)} µs/req median, ${Math.min(...cpu).toFixed(2)} min; wall ${median(samples.map((s) => s.wallUs)).toFixed(2)}; Redis CPU ${median(samples.map((s) => s.redisUs)).toFixed(2)} µs/req`,
      );
    }
  } finally {
    await cleanup();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

if (CHILD) await child(CHILD, option("redis") ?? "", option("tenant") ?? "bench");
else await main();
process.exit(0);
