// Stress test: the production mix at a rising arrival rate, to find the knee. The latency
// thresholds abort the run once they break (after 30 s of grace): the rate k6 had reached is
// the knee, and the summary shows where latency went.
//   k6 run -e BASE_URL=http://localhost:8080 -e API_KEY=wdn_… [-e MAX_RATE=5000] [-e RAMP=10m] loadtest/stress.js
import { envNumber, mixedRequest, setupTenant } from "./lib.js";

/** @type {Record<string, Record<string, import("k6/options").Threshold[]>>} */
const THRESHOLDS = JSON.parse(open("./thresholds.json"));
const MAX_RATE = envNumber("MAX_RATE", 5000);
const RAMP = __ENV.RAMP || "10m";

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    ramp: {
      executor: "ramping-arrival-rate",
      exec: "mixed",
      startRate: 10,
      timeUnit: "1s",
      preAllocatedVUs: 50,
      maxVUs: 1000,
      stages: [
        { target: MAX_RATE, duration: RAMP },
        { target: MAX_RATE, duration: "1m" },
      ],
    },
  },
  thresholds: THRESHOLDS.stress,
};

export const setup = setupTenant;
export const mixed = mixedRequest;
