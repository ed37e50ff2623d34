// Load test: the production mix at constant arrival rates, one scenario per operation.
//   k6 run -e BASE_URL=http://localhost:8080 -e API_KEY=wdn_… [-e RATE=200] [-e DURATION=2m] loadtest/load.js
// RATE is requests per second over the whole mix: 70 % authenticated reads, 15 % feedback,
// 10 % notification creates, 5 % token refreshes.
import { authRead, createNotification, envNumber, postFeedback, refreshToken, setupTenant } from "./lib.js";

/** @type {Record<string, Record<string, import("k6/options").Threshold[]>>} */
const THRESHOLDS = JSON.parse(open("./thresholds.json"));
const RATE = envNumber("RATE", 200);
const DURATION = __ENV.DURATION || "2m";

/** @param {string} exec @param {number} share @returns {import("k6/options").Scenario} */
function atRate(exec, share) {
  const rate = Math.max(1, Math.round(RATE * share));
  return {
    executor: "constant-arrival-rate",
    exec,
    rate,
    timeUnit: "1s",
    duration: DURATION,
    preAllocatedVUs: Math.max(2, Math.ceil(rate / 20)),
    maxVUs: Math.max(10, rate),
  };
}

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    reads: atRate("authRead", 0.7),
    feedback: atRate("postFeedback", 0.15),
    notifications: atRate("createNotification", 0.1),
    refresh: atRate("refreshToken", 0.05),
  },
  thresholds: THRESHOLDS.load,
};

export const setup = setupTenant;
export { authRead, createNotification, postFeedback, refreshToken };
