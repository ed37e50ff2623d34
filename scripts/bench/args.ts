import { BenchError } from "./host.ts";

const DEFAULT_DURATION_S = 5;
const QUICK_DURATION_S = 2;

export interface Options {
  durationS: number;
  /** Row names to run (the baseline always runs); undefined = every row. */
  only?: string[];
}

export function parseArgs(argv: readonly string[]): Options {
  let durationS = DEFAULT_DURATION_S;
  let only: string[] | undefined;
  for (const arg of argv) {
    const duration = /^--duration=(\d+)s?$/.exec(arg);
    const rows = /^--only=(.+)$/.exec(arg);
    if (duration?.[1]) durationS = Number(duration[1]);
    else if (rows?.[1]) only = rows[1].split(",");
    else if (arg === "--quick") durationS = QUICK_DURATION_S;
    else if (arg === "--help" || arg === "-h") {
      console.log("usage: bun scripts/bench.ts [--duration=Ns | --quick] [--only=row,row]");
      process.exit(0);
    } else throw new BenchError(`unknown argument "${arg}" (expected --duration=Ns or --quick)`);
  }
  if (durationS < 1 || durationS > 600) throw new BenchError(`--duration must be 1-600 seconds, got ${durationS}`);
  return { durationS, only };
}
