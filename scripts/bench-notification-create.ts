/**
 * CPU per `POST /v1/notifications` in process (no sockets, no wrk, no dispatcher): one recipient,
 * with one matching webhook endpoint and without, through what Bun.serve calls (`appFetch`), 64
 * requests in flight and an event-loop turn between batches as under wrk, so the group commit
 * sees batches like the server's. Reports process CPU (user + sys, so the COMMIT's writes count)
 * and wall time per request. Rounds alternate between variants so the VM's drift hits each alike:
 * use it to decide between two versions of the create, and bench.ts to report.
 *
 *   bun scripts/bench-notification-create.ts [--rounds=N] [--requests=N] [--against=<checkout>]
 *
 * `--against` also measures another checkout of this repository (e.g. `git archive main | tar -x`
 * into a directory with node_modules linked), in the same process and the same rounds.
 */
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const option = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const ROUNDS = Number(option("rounds") ?? 7);
const REQUESTS = Number(option("requests") ?? 12_800);
const AGAINST = option("against");
const PASSWORD = "correct horse battery staple";
const IN_FLIGHT = 64;

type Handle = (request: Request) => Response | Promise<Response>;
interface Variant {
  name: string;
  handle: Handle;
  headers: Record<string, string>;
  body: string;
}

async function checkoutVariants(root: string, label: string, dataDirs: string[]): Promise<Variant[]> {
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
  const dataDir = mkdtempSync(join(tmpdir(), "warden-notification-create-"));
  dataDirs.push(dataDir);
  const env = { DATA_DIR: dataDir, RATE_LIMIT_ENABLED: "false", WEBHOOK_DISPATCH: "false" };
  const deps = await openDeps(loadConfig(env), createLogger("info", new StdoutSink(openSync("/dev/null", "w"))));
  const app = createApp(deps);
  const handle: Handle = appFetch ? appFetch(app, deps) : app.handle;
  const credentials = await credentialsFor(PASSWORD);
  const user = deps.db.transaction((tx: unknown) => {
    deps.security.identity.ensureTenant(tx, "bench");
    return deps.security.identity.createUser(tx, {
      tenantId: "bench",
      email: "a@bench.test",
      role: "admin",
      credentials,
    });
  }) as { id: string };
  const call = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const response = await handle(
      new Request(`http://localhost${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      }),
    );
    if (response.status >= 300) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  };
  const login = await call("/v1/auth/token", {
    grant_type: "password",
    tenant: "bench",
    username: "a@bench.test",
    password: PASSWORD,
  });
  const headers = { authorization: `Bearer ${login.access_token}`, "content-type": "application/json" };
  // Nothing listens there: no dispatcher runs, the deliveries only have to be written.
  await call("/v1/webhooks/endpoints", { url: "http://127.0.0.1:9/hooks", event_types: ["bench.*"] }, headers);
  const body = (type: string) => JSON.stringify({ recipients: { user_ids: [user.id] }, type, title: "bench" });
  return [
    { name: `${label} create, one webhook`, handle, headers, body: body("bench.created") },
    { name: `${label} create, inbox only`, handle, headers, body: body("inbox.note") },
  ];
}

const yieldTurn = () => new Promise<void>((done) => setImmediate(done));

async function perRequest({ handle, headers, body }: Variant): Promise<{ cpuUs: number; wallUs: number }> {
  const one = async () => {
    const response = await handle(new Request("http://localhost/v1/notifications", { method: "POST", headers, body }));
    if (response.status !== 201) throw new Error(`create answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  };
  const cpu = process.cpuUsage();
  const started = Bun.nanoseconds();
  for (let sent = 0; sent < REQUESTS; sent += IN_FLIGHT) {
    const batch: Promise<void>[] = [];
    for (let i = 0; i < IN_FLIGHT; i++) batch.push(one());
    await Promise.all(batch);
    await yieldTurn();
  }
  const used = process.cpuUsage(cpu);
  return { cpuUs: (used.user + used.system) / REQUESTS, wallUs: (Bun.nanoseconds() - started) / 1000 / REQUESTS };
}

const dataDirs: string[] = [];
const variants = [
  ...(await checkoutVariants(resolve(import.meta.dir, ".."), "this", dataDirs)),
  ...(AGAINST ? await checkoutVariants(resolve(AGAINST), "against", dataDirs) : []),
];
const samples = new Map<string, { cpuUs: number; wallUs: number }[]>(variants.map((v) => [v.name, []]));
for (const variant of variants) await perRequest(variant); // warm-up: JIT and caches
for (let round = 0; round < ROUNDS; round++) {
  for (const variant of variants) samples.get(variant.name)?.push(await perRequest(variant));
}
for (const [name, values] of samples) {
  const cpu = values.map((v) => v.cpuUs);
  const wall = values.map((v) => v.wallUs);
  console.log(
    `${name.padEnd(34)} CPU ${median(cpu).toFixed(2)} µs/req median, ${Math.min(...cpu).toFixed(2)} min; wall ${median(wall).toFixed(2)} median`,
  );
}
for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
process.exit(0);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
