/**
 * Zero loss across a crash (DESIGN.md §7): the server is killed with SIGKILL while notifications
 * are being accepted and their webhooks are in flight; after a restart on the same data dir every
 * accepted notification reaches the receiver at least once (duplicates carry the same
 * webhook-id), and the outbox reconciles: accepted = delivered + pending + dead.
 */
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DATABASE_FILE } from "../../../db/client";
import { createAdminWithCli, passwordLogin } from "../../testing/cli";
import { waitFor } from "../../testing/ports";
import { startReceiver } from "../../testing/receiver";
import { startServer, type TestServer } from "../../testing/server";

const ENV = {
  RATE_LIMIT_ENABLED: "false",
  WEBHOOK_RETRY_SCHEDULE: "0,1,1,1,1,1,1,1",
  WEBHOOK_TIMEOUT_MS: "1000",
  WEBHOOK_CONCURRENCY: "4",
};
const SENDERS = 4;
const MAX_PER_SENDER = 2000;
const SEND_FOR_MS = 3000;
const KILL_AFTER_MS = 400;
/** The lease of a killed attempt runs out after the timeout + 5 s; then everything is re-sent. */
const DELIVER_WITHIN_MS = 30_000;

const dataDir = mkdtempSync(join(tmpdir(), "warden-webhook-crash-"));
const receiver = startReceiver();
const running: TestServer[] = [];

afterAll(async () => {
  for (const server of running) await server.stop("SIGKILL");
  await receiver.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function reconcile(): { accepted: number; delivered: number; pending: number; dead: number } {
  const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
  try {
    const row = db
      .query<{ accepted: number; delivered: number; pending: number; dead: number }, []>(
        `SELECT count(*) AS accepted,
                coalesce(sum(status = 'delivered'), 0) AS delivered,
                coalesce(sum(status IN ('pending', 'leased', 'failed')), 0) AS pending,
                coalesce(sum(status = 'dead'), 0) AS dead
         FROM webhook_deliveries`,
      )
      .get();
    if (!row) throw new Error("no reconciliation row");
    return row;
  } finally {
    db.close();
  }
}

test("every notification accepted before a kill -9 is delivered after the restart", async () => {
  // Slow enough that deliveries are still in flight when the kill comes.
  receiver.respond = async () => {
    await Bun.sleep(5);
    return new Response(null, { status: 204 });
  };
  const admin = await createAdminWithCli(dataDir, { tenant: "acme", email: "ops@acme.test" });
  const first = await startServer({ dataDir, env: ENV });
  running.push(first);
  const token = await passwordLogin(first, admin);
  const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const endpoint = await first.fetch("/v1/webhooks/endpoints", {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ url: receiver.url }),
  });
  expect(endpoint.status).toBe(201);

  const accepted = new Set<string>();
  const deadline = performance.now() + SEND_FOR_MS;
  const sender = async (n: number) => {
    for (let i = 0; i < MAX_PER_SENDER && performance.now() < deadline; i++) {
      const res = await first
        .fetch("/v1/notifications", {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ recipients: { user_ids: [admin.user_id] }, type: "crash.test", title: `${n}-${i}` }),
        })
        .catch(() => undefined);
      if (!res) return; // cut off by the kill
      if (res.status === 201) accepted.add(((await res.json()) as { notification: { id: string } }).notification.id);
    }
  };
  const senders = Array.from({ length: SENDERS }, (_, n) => sender(n));
  await Bun.sleep(KILL_AFTER_MS);
  await first.stop("SIGKILL");
  await Promise.all(senders);

  expect(accepted.size).toBeGreaterThan(20);
  // Cut off mid-stream: the senders had more to send when the server died.
  expect(accepted.size).toBeLessThan(SENDERS * MAX_PER_SENDER);
  const before = reconcile();
  // A write can commit just before the kill and lose only its answer: at most one per sender.
  expect(before.accepted).toBeGreaterThanOrEqual(accepted.size);
  expect(before.accepted).toBeLessThanOrEqual(accepted.size + SENDERS);
  expect(before.delivered + before.pending + before.dead).toBe(before.accepted);
  // The kill really did leave work behind, or this test would prove nothing about recovery.
  expect(before.pending).toBeGreaterThan(0);

  const second = await startServer({ dataDir, env: ENV });
  running.push(second);
  const seen = () => new Set(receiver.received.map((r) => r.id));
  // One set per check: built per id, the check was quadratic and starved the receiver sharing this process.
  await waitFor(
    () => {
      const arrived = seen();
      return [...accepted].every((id) => arrived.has(`msg_${id}`));
    },
    DELIVER_WITHIN_MS,
    "every accepted notification to reach the receiver",
  );
  expect(seen().size).toBeLessThanOrEqual(before.accepted);
  // A redelivered message carries the same webhook-id and the same bytes.
  const bodies = new Map<string, string>();
  for (const got of receiver.received) {
    const earlier = bodies.get(got.id);
    if (earlier !== undefined) expect(got.body).toBe(earlier);
    bodies.set(got.id, got.body);
  }
  await waitFor(() => reconcile().delivered === before.accepted, 15_000, "the outbox to record every delivery");
  const after = reconcile();
  expect(after).toEqual({ accepted: before.accepted, delivered: before.accepted, pending: 0, dead: 0 });
}, 90_000);
