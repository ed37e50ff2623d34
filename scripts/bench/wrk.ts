/** Drives wrk: its command line, the Lua script for non-GET requests, and parsing what it prints. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Endpoint } from "./endpoint.ts";
import type { Pinning } from "./host.ts";
import { BenchError } from "./host.ts";
import { spawnTracked, streamText } from "./processes.ts";

export const WRK_THREADS = 1;
export const WRK_CONNECTIONS = 64;
/** wrk stops itself after -d; this only catches a wrk that hangs. */
const WRK_GRACE_MS = 15_000;

export interface WrkResult {
  requests: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx3xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

export function wrkArgs(durationS: number, connections = WRK_CONNECTIONS): string[] {
  return [`-t${WRK_THREADS}`, `-c${connections}`, `-d${durationS}s`, "--latency"];
}

export async function wrkVersion(): Promise<string> {
  // `wrk -v` prints its version and then exits non-zero with the usage text.
  const out = await streamText(Bun.spawn(["wrk", "-v"], { stdout: "pipe", stderr: "pipe" }).stdout);
  return /^wrk\s+(\S+)/.exec(out)?.[1] ?? "unknown";
}

/** LuaJIT has no \u escapes; \ddd per UTF-8 byte (always three digits, or a digit after it would join in) is safe for any body. */
function luaString(value: string): string {
  let out = '"';
  for (const byte of new TextEncoder().encode(value)) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    out += printable ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, "0")}`;
  }
  return `${out}"`;
}

/**
 * A request() that puts a counter where the marker is, prefixed per run and per wrk thread so
 * that every body is unique, also across the rounds of one bench. wrk.format computes the
 * Content-Length of each.
 */
function uniqueBodies(marker: string): string[] {
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  return [
    "local threads = 0",
    `function setup(thread) threads = threads + 1; thread:set("prefix", "${run}t" .. threads .. "-") end`,
    "local counter = 0",
    `local marker = ${luaString(marker)}`,
    "function request()",
    "  counter = counter + 1",
    "  local at = string.find(wrk.body, marker, 1, true)",
    '  local body = string.sub(wrk.body, 1, at - 1) .. (prefix or "") .. counter .. string.sub(wrk.body, at + #marker)',
    "  return wrk.format(nil, nil, nil, body)",
    "end",
  ];
}

/** wrk only sends GET without a script; methods, headers and bodies go through a small Lua file. */
function wrkScript(endpoint: Endpoint, dir: string): string | undefined {
  if (endpoint.method === "GET" && !endpoint.headers && endpoint.body === undefined) return undefined;
  const lines = [`wrk.method = ${luaString(endpoint.method)}`];
  if (endpoint.body !== undefined) lines.push(`wrk.body = ${luaString(endpoint.body)}`);
  for (const [name, value] of Object.entries(endpoint.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  }
  if (endpoint.uniqueMarker !== undefined && endpoint.body !== undefined)
    lines.push(...uniqueBodies(endpoint.uniqueMarker));
  const file = join(dir, `${endpoint.name}.lua`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

export async function runWrk(
  endpoint: Endpoint,
  baseUrl: string,
  durationS: number,
  pin: Pinning | undefined,
  scriptDir: string,
): Promise<WrkResult> {
  const url = baseUrl + endpoint.path;
  const script = wrkScript(endpoint, scriptDir);
  const cmd = [
    ...(pin?.wrk ?? []),
    "wrk",
    ...wrkArgs(durationS, endpoint.connections),
    ...(script ? ["-s", script] : []),
    url,
  ];
  const child = spawnTracked(cmd, { stdout: "pipe" });
  const watchdog = setTimeout(() => child.kill("SIGKILL"), durationS * 1000 + WRK_GRACE_MS);
  const [stdout, stderr, code] = await Promise.all([streamText(child.stdout), streamText(child.stderr), child.exited]);
  clearTimeout(watchdog);
  if (code !== 0) throw new BenchError(`wrk exited with code ${code} for ${url}:\n${stderr}${stdout}`);
  return parseWrk(stdout);
}

const TIME_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function match(output: string, pattern: RegExp, what: string): RegExpExecArray {
  const found = pattern.exec(output);
  if (!found) throw new BenchError(`could not find ${what} in wrk output:\n${output}`);
  return found;
}

function latencyMs(output: string, percentile: "50" | "99"): number {
  const pattern = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, "m");
  const [, value, unit] = match(output, pattern, `${percentile}% latency`);
  const factor = TIME_UNITS_MS[unit ?? ""];
  if (factor === undefined) throw new BenchError(`unknown wrk time unit "${unit}"`);
  return Number(value) * factor;
}

/** Parses wrk 4.x text output; absent "Socket errors"/"Non-2xx" lines mean zero. */
function parseWrk(output: string): WrkResult {
  const rps = match(output, /^Requests\/sec:\s+([\d.]+)/m, "Requests/sec");
  const requests = match(output, /^\s*(\d+) requests in /m, "request count");
  const non2xx = /^\s*Non-2xx or 3xx responses:\s+(\d+)/m.exec(output);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    requests: Number(requests[1]),
    requestsPerSec: Number(rps[1]),
    p50Ms: latencyMs(output, "50"),
    p99Ms: latencyMs(output, "99"),
    non2xx3xx: Number(non2xx?.[1] ?? 0),
    socketErrors: {
      connect: Number(errors?.[1] ?? 0),
      read: Number(errors?.[2] ?? 0),
      write: Number(errors?.[3] ?? 0),
      timeout: Number(errors?.[4] ?? 0),
    },
  };
}
