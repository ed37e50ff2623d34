/**
 * Load for the refresh_token grant, which wrk cannot produce: refresh tokens rotate on every use
 * and presenting a used one revokes the session, so one request cannot be replayed. Instead N
 * chains each log in once, then keep refreshing with the token they were just given.
 *
 * As a module, runRefreshLoad() spawns this file pinned like wrk. As a script:
 *   bun scripts/bench/refresh-load.ts <base-url> <duration-s> <chains>
 * with the password login in REFRESH_LOAD_LOGIN (JSON); prints one JSON line shaped like WrkResult.
 */
import { BenchError, LOOPBACK, type Pinning } from "./host.ts";
import { spawnTracked, streamText } from "./processes.ts";
import type { WrkResult } from "./wrk.ts";

export const REFRESH_CHAINS = 16;
/** Bounds every chain even if the clock misbehaves; far above what a few seconds can reach. */
const MAX_REQUESTS_PER_CHAIN = 1_000_000;
const REQUEST_TIMEOUT_MS = 5_000;
const GRACE_MS = 30_000;
const FORM = { "content-type": "application/x-www-form-urlencoded" };

export interface PasswordLogin {
  tenant: string;
  username: string;
  password: string;
}

/** Runs the chains in their own process (on wrk's core when pinned) and returns what they measured. */
export async function runRefreshLoad(
  baseUrl: string,
  durationS: number,
  pin: Pinning | undefined,
  login: PasswordLogin,
): Promise<WrkResult> {
  const cmd = [
    ...(pin?.wrk ?? []),
    process.execPath,
    import.meta.path,
    baseUrl,
    String(durationS),
    `${REFRESH_CHAINS}`,
  ];
  const child = spawnTracked(cmd, {
    env: { PATH: process.env.PATH ?? "", REFRESH_LOAD_LOGIN: JSON.stringify(login) },
    stdout: "pipe",
  });
  const watchdog = setTimeout(() => child.kill("SIGKILL"), durationS * 1000 + GRACE_MS);
  const [stdout, stderr, code] = await Promise.all([streamText(child.stdout), streamText(child.stderr), child.exited]);
  clearTimeout(watchdog);
  if (code !== 0) throw new BenchError(`refresh-load exited with code ${code}:\n${stderr}${stdout}`);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as WrkResult;
}

interface Tally {
  latenciesMs: number[];
  non2xx: number;
  errors: WrkResult["socketErrors"];
}

async function postForm(url: string, form: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: FORM,
    body: new URLSearchParams(form).toString(),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
}

/** The starting refresh token of one chain (a password login: milliseconds of argon2, not timed). */
async function seed(url: string, login: PasswordLogin): Promise<string> {
  const res = await postForm(url, { grant_type: "password", ...login });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`seeding login answered ${res.status}: ${body.slice(0, 300)}`);
  return (JSON.parse(body) as { refresh_token: string }).refresh_token;
}

async function chain(url: string, first: string, deadline: number, tally: Tally): Promise<void> {
  let token = first;
  for (let i = 0; i < MAX_REQUESTS_PER_CHAIN && performance.now() < deadline; i++) {
    const started = performance.now();
    let res: Response;
    let body: string;
    try {
      res = await postForm(url, { grant_type: "refresh_token", refresh_token: token });
      body = await res.text();
    } catch (error) {
      const name = (error as Error).name;
      if (name === "TimeoutError" || name === "AbortError") tally.errors.timeout++;
      else if ((error as { code?: string }).code === "ConnectionRefused") tally.errors.connect++;
      else tally.errors.read++;
      return; // the token's fate is unknown, so the chain cannot go on
    }
    tally.latenciesMs.push(performance.now() - started);
    if (res.status !== 200) {
      tally.non2xx++;
      return;
    }
    token = (JSON.parse(body) as { refresh_token: string }).refresh_token;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
}

async function main(argv: readonly string[]): Promise<WrkResult> {
  const [baseUrl = "", durationRaw = "", chainsRaw = ""] = argv;
  const durationS = Number(durationRaw);
  const chains = Number(chainsRaw);
  if (new URL(baseUrl).hostname !== LOOPBACK) throw new Error(`refusing to load a non-loopback URL: ${baseUrl}`);
  if (!(durationS >= 1 && durationS <= 600)) throw new Error(`duration must be 1-600 s, got ${durationRaw}`);
  if (!(Number.isInteger(chains) && chains >= 1 && chains <= 1024)) throw new Error(`chains must be 1-1024`);
  const login = JSON.parse(process.env.REFRESH_LOAD_LOGIN ?? "null") as PasswordLogin | null;
  if (!login) throw new Error("REFRESH_LOAD_LOGIN is not set");

  const url = `${baseUrl}/v1/auth/token`;
  const firsts: string[] = [];
  for (let i = 0; i < chains; i++) firsts.push(await seed(url, login));

  const tally: Tally = { latenciesMs: [], non2xx: 0, errors: { connect: 0, read: 0, write: 0, timeout: 0 } };
  const started = performance.now();
  const deadline = started + durationS * 1000;
  await Promise.all(firsts.map((first) => chain(url, first, deadline, tally)));
  const elapsedS = (performance.now() - started) / 1000;

  const sorted = tally.latenciesMs.sort((x, y) => x - y);
  return {
    requests: sorted.length,
    requestsPerSec: sorted.length / elapsedS,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    non2xx3xx: tally.non2xx,
    socketErrors: tally.errors,
  };
}

if (import.meta.main) {
  try {
    console.log(JSON.stringify(await main(process.argv.slice(2))));
  } catch (error) {
    console.error(`refresh-load: ${(error as Error).message}`);
    process.exit(1);
  }
}
