/**
 * A floor for the feedback row of scripts/bench.ts: a bare Elysia route that parses the JSON body
 * and stores it with one `SET … EX` through ioredis with auto-pipelining, answering 202. No
 * auth, limiter, validation, index or log line: what any Redis-backed POST on this stack costs.
 * Run by the bench as its own pinned process, in the same run as the row it bounds.
 * Usage: bun scripts/bench-redis-floor.ts <port> <redis-url>
 */
import { Elysia } from "elysia";
import Redis from "ioredis";
import { LOOPBACK } from "./bench/host.ts";

const TTL_SECONDS = 604_800;

const [rawPort = "", redisUrl] = process.argv.slice(2);
const port = Number(rawPort);
if (!/^\d+$/.test(rawPort) || port < 1 || port > 65_535 || !redisUrl) {
  console.error(`bench-redis-floor: expected a port (1-65535) and a Redis URL, got "${rawPort}" "${redisUrl ?? ""}"`);
  process.exit(2);
}

const redis = new Redis(redisUrl, { enableAutoPipelining: true });
let next = 0;

new Elysia()
  .get("/", () => "ok")
  .post("/v1/feedback", async ({ body, set }) => {
    const id = `${process.pid}-${++next}`;
    await redis.set(`floor:${id}`, JSON.stringify(body), "EX", TTL_SECONDS);
    set.status = 202;
    return { id };
  })
  .listen({ hostname: LOOPBACK, port });

console.log(`bench-redis-floor listening on http://${LOOPBACK}:${port}/`);
