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
import { resolve } from "node:path";
import {
  type Checkout,
  drive,
  type Handle,
  jsonPost,
  median,
  openCheckout,
  option,
  type PerRequest,
} from "./bench/in-process.ts";

const ROUNDS = Number(option("rounds") ?? 7);
const REQUESTS = Number(option("requests") ?? 12_800);
const AGAINST = option("against");

interface Variant {
  name: string;
  handle: Handle;
  headers: Record<string, string>;
  body: string;
}

async function checkoutVariants(root: string, label: string, checkouts: Checkout[]): Promise<Variant[]> {
  const checkout = await openCheckout(root, { RATE_LIMIT_ENABLED: "false", WEBHOOK_DISPATCH: "false" });
  checkouts.push(checkout);
  const { handle } = checkout;
  const headers = { authorization: `Bearer ${checkout.token}`, "content-type": "application/json" };
  const call = async (path: string, body: unknown) => {
    const response = await handle(jsonPost(`http://localhost${path}`, headers, JSON.stringify(body)));
    if (response.status >= 300) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  };
  const me = (await (await handle(new Request("http://localhost/v1/auth/me", { headers }))).json()) as { sub: string };
  // Nothing listens there: no dispatcher runs, the deliveries only have to be written.
  await call("/v1/webhooks/endpoints", { url: "http://127.0.0.1:9/hooks", event_types: ["bench.*"] });
  const body = (type: string) => JSON.stringify({ recipients: { user_ids: [me.sub] }, type, title: "bench" });
  return [
    { name: `${label} create, one webhook`, handle, headers, body: body("bench.created") },
    { name: `${label} create, inbox only`, handle, headers, body: body("inbox.note") },
  ];
}

function perRequest({ handle, headers, body }: Variant): Promise<PerRequest> {
  return drive(async () => {
    const response = await handle(jsonPost("http://localhost/v1/notifications", headers, body));
    if (response.status !== 201) throw new Error(`create answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  }, REQUESTS);
}

const checkouts: Checkout[] = [];
const variants = [
  ...(await checkoutVariants(resolve(import.meta.dir, ".."), "this", checkouts)),
  ...(AGAINST ? await checkoutVariants(resolve(AGAINST), "against", checkouts) : []),
];
const samples = new Map<string, PerRequest[]>(variants.map((v) => [v.name, []]));
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
for (const checkout of checkouts) checkout.close();
process.exit(0);
