import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAdminWithCli } from "../src/testing/cli";
import { startServer, type TestServer } from "../src/testing/server";
import { runToEnd } from "../src/testing/tools";
import type { DryRunReport } from "./k6-dry-run";

const ROOT = join(import.meta.dir, "..");
const SCRIPTS = ["smoke", "load", "stress", "soak"];

let server: TestServer;
let apiKey: string;
let scratch: string;

beforeAll(async () => {
  // As loadtest/README.md says to start it: one principal's mix must stay under the limits.
  server = await startServer({ env: { RATE_LIMIT_PER_MINUTE: "1000000", RATE_LIMIT_AUTH_PER_MINUTE: "100000" } });
  apiKey = (await createAdminWithCli(server.dataDir, { tenant: "loadtest", email: "k6@loadtest.test" })).api_key;
  scratch = mkdtempSync(join(tmpdir(), "warden-k6-"));
  // A copy beside the real scripts' thresholds, so `open("./thresholds.json")` finds them.
  writeFileSync(
    join(scratch, "thresholds.json"),
    JSON.stringify({ broken: { "http_reqs{endpoint:never_called}": ["count>0"] } }),
  );
});

afterAll(async () => {
  await server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function dryRun(script: string, env: Record<string, string> = {}): Promise<DryRunReport> {
  const { stdout, stderr, code } = await runToEnd(
    [process.execPath, join(ROOT, "scripts", "k6-dry-run.ts"), script, "--json"],
    {
      cwd: ROOT,
      env: { ...process.env, BASE_URL: server.url, API_KEY: apiKey, ...env },
    },
  );
  if (stderr.trim() !== "") throw new Error(`the dry run wrote to stderr: ${stderr}`);
  const report = JSON.parse(stdout) as DryRunReport;
  expect(report.exitCode).toBe(code);
  return report;
}

describe("the k6 scripts, run through the shim against the real server", () => {
  for (const name of SCRIPTS) {
    test(`${name}.js: every check and every threshold but latency passes`, async () => {
      const report = await dryRun(`loadtest/${name}.js`);
      expect(report.errors).toEqual([]);
      expect(Object.entries(report.checks).filter(([, tally]) => tally.fails > 0)).toEqual([]);
      expect(Object.keys(report.checks).length).toBeGreaterThan(0);
      const failed = report.thresholds.filter((verdict) => !verdict.ok && !verdict.latency);
      expect(failed).toEqual([]);
      // Each script guards the endpoints it calls with count>0; none may go without one.
      const guarded = report.thresholds
        .filter((verdict) => verdict.expression === "count>0")
        .map((verdict) => verdict.threshold);
      const called = Object.keys(report.requests).filter((endpoint) => !endpoint.startsWith("setup_"));
      expect(called.map((endpoint) => `http_reqs{endpoint:${endpoint}}`).sort()).toEqual(guarded.sort());
      for (const [endpoint, entry] of Object.entries(report.requests)) {
        expect({ endpoint, statuses: entry.statuses.filter((status) => status < 200 || status > 299) }).toEqual({
          endpoint,
          statuses: [],
        });
      }
      expect(report.exitCode).toBe(0);
    });
  }

  test("the load mix calls each operation in its share", async () => {
    const report = await dryRun("loadtest/stress.js", { MAX_RATE: "10" });
    // 20 iterations of the mix: 14 reads, 3 feedback, 2 notifications, 1 refresh.
    expect(report.requests.auth_me?.count).toBe(14);
    expect(report.requests.feedback_create?.count).toBe(3);
    expect(report.requests.notification_create?.count).toBe(2);
    expect(report.requests.token_refresh?.count).toBe(1);
  });

  test("a refused API key stops the run in setup, saying what the token endpoint answered", async () => {
    const report = await dryRun("loadtest/smoke.js", { API_KEY: "wdn_notakey_notasecret" });
    expect(report.exitCode).toBe(107);
    expect(report.errors.join("\n")).toContain("/v1/auth/token with API_KEY answered 400");
    expect(report.errors.join("\n")).toContain("invalid_client");
  });

  test("a server that is not there is named as such", async () => {
    const report = await dryRun("loadtest/smoke.js", { BASE_URL: "http://127.0.0.1:9" });
    expect(report.exitCode).toBe(107);
    expect(report.errors.join("\n")).toContain("answered nothing");
  });

  test("a failing check and an unmet count guard fail the run", async () => {
    const script = join(scratch, "broken.js");
    writeFileSync(
      script,
      `import { check } from "k6";
import http from "k6/http";
export const options = { iterations: 2, thresholds: JSON.parse(open("./thresholds.json")).broken };
export default function () {
  const res = http.get(\`\${__ENV.BASE_URL}/v1/auth/me\`, { tags: { endpoint: "me_without_token" } });
  check(res, { "me without a token is 200": (r) => r.status === 200, "it says why": (r) => r.json("status") === 401 });
}
`,
    );
    const report = await dryRun(script);
    expect(report.exitCode).toBe(99);
    expect(report.checks["me without a token is 200"]).toEqual({ passes: 0, fails: 2 });
    expect(report.checks["it says why"]).toEqual({ passes: 2, fails: 0 });
    expect(report.thresholds).toEqual([
      { threshold: "http_reqs{endpoint:never_called}", expression: "count>0", value: 0, ok: false, latency: false },
    ]);
    expect(report.requests.me_without_token).toEqual({ count: 2, statuses: [401] });
  });
});
