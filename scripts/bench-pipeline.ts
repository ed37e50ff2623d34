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
import { resolve } from "node:path";
import { Elysia } from "elysia";
import { type Checkout, drive, type Handle, median, openCheckout, option } from "./bench/in-process.ts";

const ROUNDS = Number(option("rounds") ?? 7);
const REQUESTS = Number(option("requests") ?? 50_000);
const AGAINST = option("against");
const ONLY = option("only");

interface Variant {
  name: string;
  handle: Handle;
  url: string;
  headers: Record<string, string>;
}

/** GET /v1/auth/me of the checkout at `root`, through Elysia and the lean path, limiter off and on. */
async function serviceVariants(root: string, label: string, checkouts: Checkout[]): Promise<Variant[]> {
  const variants: Variant[] = [];
  for (const limited of [false, true]) {
    // The limit is a burst: every request of a run fits in it, so the limiter decides but never refuses.
    const env = { RATE_LIMIT_ENABLED: String(limited), RATE_LIMIT_PER_MINUTE: "1000000" };
    const checkout = await openCheckout(root, env);
    checkouts.push(checkout);
    const limiter = `limiter ${limited ? "in process" : "off"}`;
    const headers = { authorization: `Bearer ${checkout.token}` };
    const url = "http://localhost/v1/auth/me";
    variants.push({ name: `${label} auth-me, ${limiter}`, handle: checkout.elysia, url, headers });
    if (checkout.handle !== checkout.elysia)
      variants.push({ name: `${label} auth-me lean, ${limiter}`, handle: checkout.handle, url, headers });
  }
  return variants;
}

async function perRequestNs({ handle, url, headers }: Variant): Promise<number> {
  const one = async () => {
    const response = await handle(new Request(url, { headers }));
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  };
  return (await drive(one, REQUESTS)).wallUs * 1000;
}

const checkouts: Checkout[] = [];
const bareElysia = new Elysia().get("/me", () => ({ sub: "u", tenant: "t", at: new Date().toISOString() }));
const all: Variant[] = [
  { name: "bare Response", handle: () => new Response("ok"), url: "http://localhost/", headers: {} },
  { name: "bare Elysia JSON", handle: bareElysia.handle, url: "http://localhost/me", headers: {} },
  ...(await serviceVariants(resolve(import.meta.dir, ".."), "this", checkouts)),
  ...(AGAINST ? await serviceVariants(resolve(AGAINST), "against", checkouts) : []),
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
for (const checkout of checkouts) checkout.close();
process.exit(0);
