/**
 * CPU per request through the whole pipeline, in process (no sockets, no wrk): GET /v1/auth/me
 * through Elysia (`app.handle`) and through the lean path in front of it (`appFetch`, what
 * Bun.serve calls), limiter off and on, next to a bare Response and a bare Elysia JSON route.
 * Rounds alternate between variants so the VM's drift hits each alike. Much steadier than wrk on
 * a shared machine: use it to decide between two versions of the code, and bench.ts to report.
 *
 *   bun scripts/bench-pipeline.ts [--rounds=N] [--requests=N] [--against=<checkout>] [--only=<substring>]
 *
 * `--against` also measures another checkout of this repository (e.g. `git archive main | tar -x`
 * into a directory with node_modules linked), in the same process and the same rounds. `--only`
 * keeps the variants whose name contains the substring (for a profile of one:
 * `bun --cpu-prof-md scripts/bench-pipeline.ts --only="this auth-me, limiter in"`).
 */
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Elysia } from "elysia";

const option = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const ROUNDS = Number(option("rounds") ?? 7);
const REQUESTS = Number(option("requests") ?? 50_000);
const AGAINST = option("against");
const ONLY = option("only");
const PASSWORD = "correct horse battery staple";

type Handle = (request: Request) => Response | Promise<Response>;
interface Variant {
  name: string;
  handle: Handle;
  url: string;
  headers: Record<string, string>;
}

/** The real app of the checkout at `root` on a temp DATA_DIR, its access log going to /dev/null, and a token. */
async function serviceVariants(root: string, label: string, dataDirs: string[]): Promise<Variant[]> {
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
  const variants: Variant[] = [];
  for (const limited of [false, true]) {
    const dataDir = mkdtempSync(join(tmpdir(), "warden-pipeline-"));
    dataDirs.push(dataDir);
    // The limit is a burst: every request of a run fits in it, so the limiter decides but never refuses.
    const env = { DATA_DIR: dataDir, RATE_LIMIT_ENABLED: String(limited), RATE_LIMIT_PER_MINUTE: "1000000" };
    const log = createLogger("info", new StdoutSink(openSync("/dev/null", "w")));
    const deps = await openDeps(loadConfig(env), log);
    const app = createApp(deps);
    const credentials = await credentialsFor(PASSWORD);
    deps.db.transaction((tx: unknown) => {
      deps.security.identity.ensureTenant(tx, "bench");
      deps.security.identity.createUser(tx, { tenantId: "bench", email: "a@bench.test", role: "admin", credentials });
    });
    const login = await app.handle(
      new Request("http://localhost/v1/auth/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "password", tenant: "bench", username: "a@bench.test", password: PASSWORD }),
      }),
    );
    const { access_token } = (await login.json()) as { access_token: string };
    const limiter = `limiter ${limited ? "in process" : "off"}`;
    const headers = { authorization: `Bearer ${access_token}` };
    const url = "http://localhost/v1/auth/me";
    variants.push({ name: `${label} auth-me, ${limiter}`, handle: app.handle, url, headers });
    // What Bun.serve calls: the lean path in front of Elysia (checkouts before it have no appFetch).
    if (appFetch)
      variants.push({ name: `${label} auth-me lean, ${limiter}`, handle: appFetch(app, deps), url, headers });
  }
  return variants;
}

/** Like the server under wrk: 64 requests in flight, then an event-loop turn for timers and setImmediate. */
const IN_FLIGHT = 64;
const yieldTurn = () => new Promise<void>((done) => setImmediate(done));

async function perRequestNs({ handle, url, headers }: Variant): Promise<number> {
  const one = async () => {
    const response = await handle(new Request(url, { headers }));
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  };
  const started = Bun.nanoseconds();
  for (let sent = 0; sent < REQUESTS; sent += IN_FLIGHT) {
    const batch: Promise<void>[] = [];
    for (let i = 0; i < IN_FLIGHT; i++) batch.push(one());
    await Promise.all(batch);
    await yieldTurn();
  }
  return (Bun.nanoseconds() - started) / REQUESTS;
}

const dataDirs: string[] = [];
const bareElysia = new Elysia().get("/me", () => ({ sub: "u", tenant: "t", at: new Date().toISOString() }));
const all: Variant[] = [
  { name: "bare Response", handle: () => new Response("ok"), url: "http://localhost/", headers: {} },
  { name: "bare Elysia JSON", handle: bareElysia.handle, url: "http://localhost/me", headers: {} },
  ...(await serviceVariants(resolve(import.meta.dir, ".."), "this", dataDirs)),
  ...(AGAINST ? await serviceVariants(resolve(AGAINST), "against", dataDirs) : []),
];
const variants = all.filter((v) => ONLY === undefined || v.name === "bare Response" || v.name.includes(ONLY));
const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
for (const variant of variants) await perRequestNs(variant); // warm-up: JIT and caches
for (let round = 0; round < ROUNDS; round++) {
  for (const variant of variants) samples.get(variant.name)?.push(await perRequestNs(variant));
}
const bare = median(samples.get("bare Response") ?? []);
for (const [name, values] of samples) {
  const mid = median(values);
  const over = name === "bare Response" ? "" : `  (+${((mid - bare) / 1000).toFixed(2)} over bare)`;
  console.log(
    `${name.padEnd(40)} ${(mid / 1000).toFixed(2)} µs/req median, ${(Math.min(...values) / 1000).toFixed(2)} min${over}`,
  );
}
for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
process.exit(0);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
