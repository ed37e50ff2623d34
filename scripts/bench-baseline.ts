/**
 * The ceiling for scripts/bench.ts: a bare Bun.serve returning a small text body. It runs as its
 * own process so it is pinned and measured exactly like the service, and each service row can be
 * read as a fraction of it. Usage: bun scripts/bench-baseline.ts <port> (or PORT=<port>).
 */

import { LOOPBACK } from "./bench/host.ts";

function portFromArgs(): number {
  const raw = process.argv[2] ?? process.env.PORT ?? "";
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65_535) {
    console.error(`bench-baseline: expected a port (1-65535) as the first argument or PORT, got "${raw}"`);
    process.exit(2);
  }
  return port;
}

const server = Bun.serve({
  hostname: LOOPBACK,
  port: portFromArgs(),
  fetch: () => new Response("ok"),
});

console.log(`bench-baseline listening on ${server.url.href}`);
