/**
 * Micro-benchmark of the revocation check and of start-up with a full revocation table:
 * 100 000 live revocations (jti, session, user and tenant cut-offs) written through the real
 * RevocationService into a temp SQLite, then
 *   - ns per RevocationService.isRevoked call over 25 000 distinct tokens, hits and misses
 *     (target < 1 µs; median of 7 trials),
 *   - a fresh service's load() over those rows (target < 1 s),
 *   - openDeps() on that DATA_DIR: migrations, key ring, secrets and the same load (target < 1 s).
 * Prints a table; exits 1 if a target is missed.
 *
 *   bun scripts/bench-revocation.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { openDatabase } from "../db/client.ts";
import { loadConfig } from "../src/config.ts";
import { systemClock } from "../src/lib/clock.ts";
import { createLogger } from "../src/lib/logger.ts";
import { type RevocableClaims, type Revocation, RevocationService } from "../src/modules/revocation/service.ts";
import { openDeps } from "../src/runtime.ts";

const MIX = { token: 40_000, session: 30_000, user: 20_000, tenant: 10_000 } as const;
const TOTAL = MIX.token + MIX.session + MIX.user + MIX.tenant;
const BATCH = 1_000;
const COVER_MS = (900 + 30) * 1000;
const ROUNDS = 5;
const TRIALS = 7;
const CHECK_TARGET_NS = 1_000;
const START_TARGET_MS = 1_000;

interface Result {
  name: string;
  value: number;
  unit: "ns/call" | "ms";
  target: number;
}

/** Writes MIX through the real service, BATCH revocations per commit (one transaction each). */
function seed(service: RevocationService): void {
  const all: Revocation[] = [];
  for (let i = 0; i < MIX.token; i++)
    all.push(service.token(`jti-${i}`, tenantOf(i), systemClock.now() + COVER_MS, "bench"));
  for (let i = 0; i < MIX.session; i++) all.push(service.cutoff("session", `sid-${i}`, tenantOf(i), "bench"));
  for (let i = 0; i < MIX.user; i++) all.push(service.cutoff("user", `user-${i}`, tenantOf(i), "bench"));
  for (let i = 0; i < MIX.tenant; i++) all.push(service.cutoff("tenant", `tenant-${i}`, `tenant-${i}`, "bench"));
  for (let i = 0; i < all.length; i += BATCH) service.commit(all.slice(i, i + BATCH));
}

function tenantOf(i: number): string {
  return `tenant-${i % MIX.tenant}`;
}

/** Claims that hit each kind of entry: listed jti, revoked session, user and tenant cut-offs. */
function hits(iatBefore: number): RevocableClaims[] {
  const claims: RevocableClaims[] = [];
  for (let i = 0; i < 25_000; i++) {
    const base = { sub: `live-user-${i}`, tid: `live-tenant-${i}`, sid: `live-sid-${i}`, jti: `live-jti-${i}` };
    switch (i % 4) {
      case 0:
        claims.push({ ...base, jti: `jti-${i}`, tid: tenantOf(i), iat: iatBefore });
        break;
      case 1:
        claims.push({ ...base, sid: `sid-${i}`, iat: iatBefore });
        break;
      case 2:
        claims.push({ ...base, sub: `user-${i % MIX.user}`, iat: iatBefore });
        break;
      default:
        claims.push({ ...base, tid: `tenant-${i % MIX.tenant}`, iat: iatBefore });
    }
  }
  return claims;
}

/** Tokens nobody revoked; `worstCase` gives them a user and tenant with older cut-offs, so all four lookups run. */
function misses(iatAfter: number, worstCase: boolean): RevocableClaims[] {
  return Array.from({ length: 25_000 }, (_, i) => ({
    jti: `live-jti-${i}`,
    sid: `live-sid-${i}`,
    sub: worstCase ? `user-${i % MIX.user}` : `live-user-${i}`,
    tid: worstCase ? `tenant-${i % MIX.tenant}` : `live-tenant-${i}`,
    iat: iatAfter,
  }));
}

/**
 * ns per isRevoked call: the median of TRIALS timings of ROUNDS passes over `claims` (the median,
 * because a shared VM's neighbours make single timings jump). Throws if any answer is wrong.
 */
function timeChecks(service: RevocationService, claims: readonly RevocableClaims[], expected: boolean): number {
  const pass = () => {
    let matching = 0;
    for (const claim of claims) if (service.isRevoked(claim) === expected) matching++;
    return matching;
  };
  // Collect the seeding's garbage now, so only what the checks themselves allocate is timed.
  Bun.gc(true);
  for (let i = 0; i < 3; i++) pass(); // warm-up: let the JIT settle before timing
  const trials: number[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    const started = Bun.nanoseconds();
    let matching = 0;
    for (let round = 0; round < ROUNDS; round++) matching += pass();
    trials.push((Bun.nanoseconds() - started) / (claims.length * ROUNDS));
    if (matching !== claims.length * ROUNDS) {
      throw new Error(`isRevoked answered ${!expected} for ${claims.length * ROUNDS - matching} claims`);
    }
  }
  return trials.sort((x, y) => x - y)[Math.floor(TRIALS / 2)] ?? Number.NaN;
}

async function timeOpenDeps(dataDir: string): Promise<number> {
  const config = loadConfig({ NODE_ENV: "test", DATA_DIR: dataDir });
  const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
  const started = performance.now();
  const deps = await openDeps(config, createLogger("warn", quiet));
  const elapsed = performance.now() - started;
  const loaded = deps.security.revocation.size;
  deps.db.$client.close();
  if (loaded !== TOTAL) throw new Error(`openDeps loaded ${loaded} revocations, expected ${TOTAL}`);
  return elapsed;
}

function format(results: readonly Result[]): string {
  const header = ["measurement", "result", "target", "ok"];
  const cells = results.map((r) => [
    r.name,
    `${r.value.toFixed(r.unit === "ms" ? 1 : 0)} ${r.unit}`,
    `< ${r.target} ${r.unit}`,
    r.value < r.target ? "yes" : "MISSED",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((line) => line[i]?.length ?? 0)));
  const render = (line: string[]) =>
    line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  return [render(header), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(render)].join("\n");
}

async function main(dataDir: string): Promise<number> {
  const db = openDatabase(dataDir);
  const writer = new RevocationService(db, systemClock, COVER_MS);
  const seeding = performance.now();
  seed(writer);
  console.error(`bench-revocation: wrote ${TOTAL} revocations in ${(performance.now() - seeding).toFixed(0)} ms`);

  const fresh = new RevocationService(db, systemClock, COVER_MS);
  const loading = performance.now();
  fresh.load();
  const loadMs = performance.now() - loading;
  if (fresh.size !== TOTAL) throw new Error(`load() found ${fresh.size} revocations, expected ${TOTAL}`);

  const now = Math.floor(systemClock.now() / 1000);
  const results: Result[] = [
    { name: "isRevoked, hit (jti/session/user/tenant mix)", value: timeChecks(fresh, hits(now - 60), true) },
    { name: "isRevoked, miss (no entry applies)", value: timeChecks(fresh, misses(now + 60, false), false) },
    {
      name: "isRevoked, miss (user + tenant cut-offs older)",
      value: timeChecks(fresh, misses(now + 60, true), false),
    },
  ].map((r) => ({ ...r, unit: "ns/call" as const, target: CHECK_TARGET_NS }));
  results.push({
    name: `load() of ${TOTAL.toLocaleString("en-US")} rows`,
    value: loadMs,
    unit: "ms",
    target: START_TARGET_MS,
  });
  db.$client.close();
  results.push({
    name: "openDeps (migrate, key ring, load)",
    value: await timeOpenDeps(dataDir),
    unit: "ms",
    target: START_TARGET_MS,
  });

  console.log(`bun ${Bun.version}, ${TOTAL.toLocaleString("en-US")} live revocations (${JSON.stringify(MIX)})\n`);
  console.log(format(results));
  const missed = results.filter((r) => r.value >= r.target);
  if (missed.length > 0) console.error(`\nbench-revocation: missed ${missed.map((r) => r.name).join("; ")}`);
  return missed.length > 0 ? 1 : 0;
}

const dataDir = mkdtempSync(join(tmpdir(), "warden-bench-revocation-"));
let code = 1;
try {
  code = await main(dataDir);
} catch (error) {
  console.error(`bench-revocation: ${(error as Error).stack ?? error}`);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(code);
