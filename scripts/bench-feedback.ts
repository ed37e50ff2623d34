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
import { resolve } from "node:path";
import { type Subprocess, spawn } from "bun";
import { pinning } from "./bench/host.ts";
import { drive, jsonPost, median, openCheckout, option, type PerRequest } from "./bench/in-process.ts";
import { cleanup, installExitHandlers, makeTempDir } from "./bench/processes.ts";
import { startBenchRedis } from "./bench/redis.ts";

const ROUNDS = Number(option("rounds") ?? 7);
const REQUESTS = Number(option("requests") ?? 12_800);
const AGAINST = option("against");
const CHILD = option("child");

/** One checkout's app on a temp DATA_DIR and the given Redis; answers "round" on stdin with a PerRequest line. */
async function child(root: string, redisUrl: string, tenant: string): Promise<void> {
  const env = { RATE_LIMIT_ENABLED: "false", WEBHOOK_DISPATCH: "false", REDIS_URL: redisUrl };
  const checkout = await openCheckout(root, env, tenant);
  const { deps, handle } = checkout;
  const started = Date.now();
  while (deps.redis?.status !== "ready") {
    if (Date.now() - started > 5000) throw new Error(`redis at ${redisUrl} not ready`);
    await Bun.sleep(20);
  }
  const headers = { authorization: `Bearer ${checkout.token}`, "content-type": "application/json" };
  let subject = 0;
  const one = async () => {
    const body = `{"subject_type":"alert","subject_id":"bench-${subject++}","verdict":"useful","rating":4}`;
    const response = await handle(jsonPost("http://localhost/v1/feedback", headers, body));
    if (response.status !== 202) throw new Error(`feedback answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  };
  if ((deps.feedback.spool?.depth ?? 0) !== 0) throw new Error("feedback spooled: Redis did not take the writes");
  console.log(`${REPLY}ready`);
  for await (const line of console) {
    if (line === "round") console.log(`${REPLY}${JSON.stringify(await drive(one, REQUESTS))}`);
    else break;
  }
  deps.redis?.disconnect();
  checkout.close();
  process.exit(0);
}

/** Marks a child's replies: whatever else a checkout prints on stdout is passed over. */
const REPLY = "@bench ";

/** A child's replies on its stdout, one at a time. */
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
        if (line.startsWith(REPLY)) return line.slice(REPLY.length);
        continue;
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
      return { name, proc, next: lines(proc), samples: [] as (PerRequest & { redisUs: number })[] };
    });
    try {
      for (const c of children) if ((await c.next()) !== "ready") throw new Error(`${c.name} did not start`);
      for (let round = 0; round <= ROUNDS; round++) {
        for (const c of children) {
          const before = await redisCpuSeconds(redisUrl);
          c.proc.stdin.write("round\n");
          c.proc.stdin.flush();
          const sample = JSON.parse(await c.next()) as PerRequest;
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

if (CHILD) await child(CHILD, option("redis") ?? "", option("tenant") ?? "bench");
else await main();
process.exit(0);
