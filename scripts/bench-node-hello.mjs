/**
 * A second bar for scripts/bench.ts: a bare Node.js `http` hello-world answering what the Bun
 * baseline answers ("ok", text/plain). The authenticated GET's target is to beat it, so it runs
 * as its own pinned process in the same run, measured like every other row.
 * Usage: node scripts/bench-node-hello.mjs <port>
 */
import { createServer } from "node:http";

const raw = process.argv[2] ?? process.env.PORT ?? "";
const port = Number(raw);
if (!/^\d+$/.test(raw) || port < 1 || port > 65_535) {
  console.error(`bench-node-hello: expected a port (1-65535) as the first argument or PORT, got "${raw}"`);
  process.exit(2);
}

createServer((_request, response) => {
  response.writeHead(200, { "content-type": "text/plain;charset=utf-8" });
  response.end("ok");
}).listen(port, "127.0.0.1", () => console.log(`bench-node-hello listening on http://127.0.0.1:${port}/`));
