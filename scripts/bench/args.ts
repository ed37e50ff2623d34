import { BenchError } from "./host.ts";

const DEFAULT_DURATION_S = 5;
const QUICK_DURATION_S = 2;

export interface Options {
  durationS: number;
  /** Row names to run (the baseline always runs); undefined = every row. */
  only?: string[];
  /** Times each row is measured, each time right after a baseline of its own (1 = one baseline for the run). */
  rounds: number;
}

export function parseArgs(argv: readonly string[]): Options {
  let durationS = DEFAULT_DURATION_S;
  let only: string[] | undefined;
  let rounds = 1;
  for (const arg of argv) {
    const duration = /^--duration=(\d+)s?$/.exec(arg);
    const rows = /^--only=(.+)$/.exec(arg);
    const repeat = /^--rounds=(\d+)$/.exec(arg);
    if (duration?.[1]) durationS = Number(duration[1]);
    else if (repeat?.[1]) rounds = Number(repeat[1]);
    else if (rows?.[1]) only = rows[1].split(",");
    else if (arg === "--quick") durationS = QUICK_DURATION_S;
    else if (arg === "--help" || arg === "-h") {
      console.log("usage: bun scripts/bench.ts [--duration=Ns | --quick] [--only=row,row] [--rounds=N]");
      process.exit(0);
    } else
      throw new BenchError(`unknown argument "${arg}" (expected --duration=Ns, --quick, --only=row,row or --rounds=N)`);
  }
  if (durationS < 1 || durationS > 600) throw new BenchError(`--duration must be 1-600 seconds, got ${durationS}`);
  if (rounds < 1 || rounds > 20) throw new BenchError(`--rounds must be 1-20, got ${rounds}`);
  return { durationS, only, rounds };
}
