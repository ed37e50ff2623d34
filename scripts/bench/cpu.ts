/**
 * Where a row's CPU went. Steal: the share of a core's time the hypervisor gave to someone else
 * during the row. On a shared VM it swings from ~0 to over 50 % within minutes, and a row measured while it is high
 * says little about our code, so every row reports the worse of the server's and wrk's core (a
 * starved wrk holds the baseline back and inflates every ratio).
 */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc's counters (CLK_TCK; 100 on every Linux this runs on). */
const TICKS_PER_SECOND = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/**
 * CPU seconds (user + system) a process has used so far; undefined off Linux. Time stolen from
 * its core is not in it, so CPU per request holds still while steal moves req/s about.
 */
export function processCpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces: count fields from the ")" that closes it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / TICKS_PER_SECOND : undefined;
}

export interface CpuTicks {
  total: number;
  steal: number;
}

/** /proc/stat's line per core (user nice system idle iowait irq softirq steal ...); undefined off Linux. */
export function cpuTicks(cores: readonly number[]): (CpuTicks | undefined)[] {
  let stat: string;
  try {
    stat = readFileSync("/proc/stat", "utf8");
  } catch {
    return cores.map(() => undefined);
  }
  return cores.map((core) => coreTicks(stat, core));
}

function coreTicks(stat: string, core: number): CpuTicks | undefined {
  const line = new RegExp(`^cpu${core} (.+)$`, "m").exec(stat)?.[1];
  if (!line) return undefined;
  const fields = line.trim().split(/\s+/).map(Number);
  // guest and guest_nice (fields 9–10) are already counted in user and nice.
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { total, steal: fields[7] ?? 0 };
}

/** The highest percent of a core's time stolen between two samples; undefined when one is missing. */
export function stealPercent(
  before: readonly (CpuTicks | undefined)[],
  after: readonly (CpuTicks | undefined)[],
): number | undefined {
  let worst: number | undefined;
  for (const [i, from] of before.entries()) {
    const to = after[i];
    if (!from || !to) return undefined;
    const total = to.total - from.total;
    worst = Math.max(worst ?? 0, total > 0 ? (100 * (to.steal - from.steal)) / total : 0);
  }
  return worst;
}

/**
 * Waits until the given processes together use at most `maxShare` of a core over two windows in a
 * row (or `timeoutMs` passes); returns whether they did. A row must not pay for the one before it:
 * after the notification rows a server still checkpoints hundreds of megabytes of WAL on its
 * thread, on the core every server shares.
 */
export async function settle(
  pids: readonly number[],
  { windowMs = 250, maxShare = 0.03, timeoutMs = 30_000 } = {},
): Promise<boolean> {
  const used = () => pids.reduce((total, pid) => total + (processCpuSeconds(pid) ?? 0), 0);
  const deadline = performance.now() + timeoutMs;
  let quiet = 0;
  while (performance.now() < deadline) {
    const before = used();
    await Bun.sleep(windowMs);
    quiet = (used() - before) / (windowMs / 1000) <= maxShare ? quiet + 1 : 0;
    if (quiet >= 2) return true;
  }
  return false;
}
