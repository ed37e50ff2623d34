// Soak test: the production mix at a modest constant rate for a long time, to find leaks,
// growing queues and slow drifts (access tokens are renewed as they expire).
//   k6 run -e BASE_URL=http://localhost:8080 -e API_KEY=wdn_… [-e RATE=50] [-e DURATION=2h] loadtest/soak.js
import { envNumber, mixedRequest, setupTenant } from "./lib.js";

/** @type {Record<string, Record<string, import("k6/options").Threshold[]>>} */
const THRESHOLDS = JSON.parse(open("./thresholds.json"));
const RATE = envNumber("RATE", 50);

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    soak: {
      executor: "constant-arrival-rate",
      exec: "mixed",
      rate: RATE,
      timeUnit: "1s",
      duration: __ENV.DURATION || "2h",
      preAllocatedVUs: Math.max(2, Math.ceil(RATE / 20)),
      maxVUs: Math.max(20, RATE * 2),
    },
  },
  thresholds: THRESHOLDS.soak,
};

export const setup = setupTenant;
export const mixed = mixedRequest;
