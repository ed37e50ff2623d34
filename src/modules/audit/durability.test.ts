/**
 * The audit trail's durability promise (issue 4, DESIGN.md §1 and §6): under a steady stream of
 * audited writes the server is killed with SIGKILL while requests are in flight; after a restart
 * on the same data dir every request that got a 2xx has its event (and its change) on disk, and
 * the chain still verifies, from the CLI and over HTTP.
 */
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DATABASE_FILE } from "../../../db/client";
import { createAdminWithCli, passwordLogin, runCli } from "../../testing/cli";
import { startServer, type TestServer } from "../../testing/server";
import { AuditAction } from "./actions";

const LOOPS = 8;
/** Every loop stops at whichever comes first: this many requests, the deadline, or the kill. */
const MAX_REQUESTS_PER_LOOP = 20_000;
const LOOP_DEADLINE_MS = 10_000;
const KILL_AFTER_MS = 1_500;
const REQUEST_TIMEOUT_MS = 5_000;
/** Fewer acknowledged writes than this and the test would prove little. */
const MIN_ACKNOWLEDGED = 50;
/** All requests come from one IP: no limiter, so the stream is not turned into 429s. */
const ENV = { RATE_LIMIT_ENABLED: "false" };

const dataDir = mkdtempSync(join(tmpdir(), "warden-audit-durability-"));
const running: TestServer[] = [];

afterAll(async () => {
  for (const server of running) await server.stop("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

interface Stream {
  /** Request id → jti of every request answered 201. */
  acknowledged: Map<string, string>;
  /** Statuses other than 201 that came back (none expected). */
  unexpected: string[];
  /** Requests that failed without an answer (the kill cuts them off). */
  cutOff: number;
  inFlight: number;
}

/** One writer: POST /v1/admin/revocations with a fresh jti and request id, one after another. */
async function writer(server: TestServer, token: string, loop: number, stream: Stream, deadline: number) {
  for (let i = 0; i < MAX_REQUESTS_PER_LOOP && performance.now() < deadline; i++) {
    const requestId = `durability-${loop}-${i}`;
    const jti = `jti-${loop}-${i}`;
    stream.inFlight++;
    try {
      const res = await server.fetch("/v1/admin/revocations", {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          "x-request-id": requestId,
        },
        body: JSON.stringify({ jti }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = await res.text();
      if (res.status === 201) stream.acknowledged.set(requestId, jti);
      else stream.unexpected.push(`${requestId}: ${res.status} ${body.slice(0, 200)}`);
    } catch {
      // No answer: the server is gone. Nothing was acknowledged, so nothing is owed.
      stream.cutOff++;
      return;
    } finally {
      stream.inFlight--;
    }
  }
}

interface StoredEvent {
  request_id: string;
  action: string;
  outcome: string;
  target_id: string | null;
}

// Two server starts, two CLI runs, two argon2id logins and a 1.5 s stream: past the 5 s default on a busy machine.
test("every audited write answered 2xx should survive kill -9, and the chain should still verify", async () => {
  const admin = await createAdminWithCli(dataDir, { tenant: "durable", email: "admin@durable.test" });
  const first = await startServer({ dataDir, env: ENV });
  running.push(first);
  const token = await passwordLogin(first, admin);

  const stream: Stream = { acknowledged: new Map(), unexpected: [], cutOff: 0, inFlight: 0 };
  const deadline = performance.now() + LOOP_DEADLINE_MS;
  const writers = Array.from({ length: LOOPS }, (_, loop) => writer(first, token, loop, stream, deadline));

  await Bun.sleep(KILL_AFTER_MS);
  const inFlightAtKill = stream.inFlight;
  const acknowledgedBeforeKill = stream.acknowledged.size;
  first.proc.kill("SIGKILL");
  expect(await first.proc.exited).not.toBe(0);
  running.splice(running.indexOf(first), 1);
  await Promise.all(writers);

  // The kill must have hit a live stream, and the stream must have been worth killing.
  expect(inFlightAtKill).toBeGreaterThan(0);
  expect(acknowledgedBeforeKill).toBeGreaterThanOrEqual(MIN_ACKNOWLEDGED);
  expect(stream.unexpected).toEqual([]);
  expect(stream.cutOff).toBeGreaterThan(0);

  const second = await startServer({ dataDir, env: ENV });
  running.push(second);

  const sqlite = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
  try {
    const events = new Map(
      sqlite
        .query<StoredEvent, [string]>(
          "SELECT request_id, action, outcome, target_id FROM audit_events WHERE request_id LIKE ? ORDER BY seq",
        )
        .all("durability-%")
        .map((event) => [event.request_id, event]),
    );
    const revoked = new Set(
      sqlite
        .query<{ jti: string }, []>("SELECT jti FROM revoked_tokens WHERE jti LIKE 'jti-%'")
        .all()
        .map((row) => row.jti),
    );
    const missing = [...stream.acknowledged].filter(([requestId]) => !events.has(requestId));
    expect(missing, `${missing.length} of ${stream.acknowledged.size} acknowledged events are missing`).toEqual([]);
    for (const [requestId, jti] of stream.acknowledged) {
      expect(events.get(requestId)).toEqual({
        request_id: requestId,
        action: AuditAction.revocationCreated,
        outcome: "success",
        target_id: jti,
      });
    }
    // Same transaction: no event without its revocation, no revocation without its event.
    expect([...events.values()].filter((event) => !revoked.has(event.target_id ?? "")).length).toBe(0);
    expect(revoked.size).toBe(events.size);
  } finally {
    sqlite.close();
  }

  const cli = await runCli(dataDir, ["audit", "verify"]);
  expect(cli.code, `audit verify: ${cli.stdout}${cli.stderr}`).toBe(0);
  expect(cli.stdout).toContain("audit chain intact");

  const fresh = await passwordLogin(second, admin);
  const res = await second.fetch("/v1/audit/verify", { headers: { authorization: `Bearer ${fresh}` } });
  expect(res.status).toBe(200);
  const report = (await res.json()) as { ok: boolean; checked: number };
  expect(report.ok).toBe(true);
  expect(report.checked).toBeGreaterThanOrEqual(stream.acknowledged.size);

  running.splice(running.indexOf(second), 1);
  expect(await second.stop("SIGTERM")).toBe(0);
}, 30_000);
