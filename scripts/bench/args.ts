import { BenchError } from "./host.ts";

const DEFAULT_DURATION_S = 5;
const QUICK_DURATION_S = 2;

export interface Options {
  durationS: number;
}

export function parseArgs(argv: readonly string[]): Options {
  let durationS = DEFAULT_DURATION_S;
  for (const arg of argv) {
    const duration = /^--duration=(\d+)s?$/.exec(arg);
    if (duration?.[1]) durationS = Number(duration[1]);
    else if (arg === "--quick") durationS = QUICK_DURATION_S;
    else if (arg === "--help" || arg === "-h") {
      console.log("usage: bun scripts/bench.ts [--duration=Ns | --quick]");
      process.exit(0);
    } else throw new BenchError(`unknown argument "${arg}" (expected --duration=Ns or --quick)`);
  }
  if (durationS < 1 || durationS > 600) throw new BenchError(`--duration must be 1-600 seconds, got ${durationS}`);
  return { durationS };
}
