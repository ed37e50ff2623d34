/**
 * What a lease's reads cost when one endpoint, at its share of the slots (a receiver that hangs),
 * has a backlog older than everyone else's, against the same reads with no backlog (the
 * baseline, measured in the same run). Every lease reads the due window, which stays as cheap
 * whatever waits; the look past the backlog passes all of it, so the dispatcher takes that look
 * at most a tenth of the time (the pause after each look is nine times what it took). 200 other
 * endpoints each have one due row behind the backlog. Median of 7 trials of 50 leases each.
 *
 *   bun scripts/bench-dispatch-backlog.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../db/client.ts";
import { prepareDispatch } from "../src/modules/webhooks/dispatch-statements.ts";

const BACKLOGS = [0, 20_000, 200_000];
const OTHER_ENDPOINTS = 200;
const WINDOW = 64;
const LEASES = 50;
const TRIALS = 7;
const NOW = 10_000_000;

/** Median µs a call of `read` over TRIALS trials of LEASES calls. */
function median(read: () => unknown): number {
  const trials: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const started = performance.now();
    for (let i = 0; i < LEASES; i++) read();
    trials.push(((performance.now() - started) * 1000) / LEASES);
  }
  return trials.sort((a, b) => a - b)[Math.floor(TRIALS / 2)] ?? Number.NaN;
}

function leaseCostUs(backlog: number): { window: number; behind: number } {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-dispatch-"));
  try {
    const db = openDatabase(dir);
    const sqlite = db.$client;
    sqlite.run("INSERT INTO tenants (id, created_at) VALUES ('hanging', 0), ('others', 0)");
    const endpoint = sqlite.prepare(
      "INSERT INTO webhook_endpoints (id, tenant_id, url, description, secret_sealed, created_at) VALUES (?, ?, 'http://127.0.0.1:9/', '', 'x', 0)",
    );
    const delivery = sqlite.prepare(
      `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status, attempts, due_at, created_at)
       VALUES (?, ?, ?, 'n', 'alert.fired', '{}', 'pending', 0, ?, 0)`,
    );
    sqlite.transaction(() => {
      endpoint.run("hanging", "hanging");
      for (let i = 0; i < backlog; i++) delivery.run(`h-${i}`, "hanging", "hanging", i);
      for (let e = 0; e < OTHER_ENDPOINTS; e++) {
        endpoint.run(`other-${e}`, "others");
        delivery.run(`o-${e}`, "others", `other-${e}`, backlog + e);
      }
    })();
    const sql = prepareDispatch(sqlite);
    const full = JSON.stringify(["hanging"]);
    const window = median(() => sql.candidates.all(NOW, WINDOW));
    const behind = median(() => sql.behind.all(NOW, full, "[]", WINDOW));
    db.$client.close();
    return { window, behind };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = BACKLOGS.map((backlog) => ({ backlog, ...leaseCostUs(backlog) }));
const base = results[0] ?? { window: Number.NaN, behind: Number.NaN };
console.log("backlog | window µs (× none) | look past it µs (× none) | next look after");
for (const { backlog, window, behind } of results) {
  const pause = (behind * 9) / 1000;
  console.log(
    `${String(backlog).padStart(7)} | ${window.toFixed(1).padStart(8)} (${(window / base.window).toFixed(2)}×) | ${behind
      .toFixed(1)
      .padStart(10)} (${(behind / base.behind).toFixed(1)}×) | ${pause.toFixed(2)} ms`,
  );
}
