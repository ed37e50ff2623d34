import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../../db/client";
import { systemClock } from "../../lib/clock";
import { createAdminWithCli, runCli } from "../../testing/cli";
import { startServer, type TestServer } from "../../testing/server";
import { promtool } from "../../testing/tools";
import { archiveOlderThan } from "../audit/retention";
import { deriveServerSecrets, loadMasterKey } from "../auth/server-secrets";

let server: TestServer;
let backupFile: string;
const dir = mkdtempSync(join(tmpdir(), "warden-backup-"));
/** Writes the load finished, and how many of them ended while the backup ran. */
const load = { done: 0, failed: 0, duringBackup: 0 };

async function accessToken(apiKey: string): Promise<string> {
  const res = await server.fetch("/v1/auth/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ grant_type: "client_credentials", client_secret: apiKey }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

/** Audited writes (revocations: a row and an audit event in one transaction) from `workers` loops until `stop`. */
function writeLoad(token: string, workers: number, stop: { now: boolean; backingUp: boolean }): Promise<unknown> {
  const loop = async () => {
    while (!stop.now) {
      const res = await server.fetch("/v1/admin/revocations", {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ jti: crypto.randomUUID() }),
      });
      await res.arrayBuffer();
      if (res.status === 201) load.done++;
      else load.failed++;
      if (stop.backingUp) load.duringBackup++;
    }
  };
  return Promise.all(Array.from({ length: workers }, loop));
}

beforeAll(async () => {
  // Eight writers from one address: the production rate limit would turn the load into 429s.
  server = await startServer({ env: { RATE_LIMIT_ENABLED: "false" } });
  const admin = await createAdminWithCli(server.dataDir, { tenant: "acme", email: "ops@acme.test" });
  const token = await accessToken(admin.api_key);
  const stop = { now: false, backingUp: false };
  const running = writeLoad(token, 8, stop);
  while (load.done < 200) await Bun.sleep(10);
  backupFile = join(dir, "warden-backup.db");
  stop.backingUp = true;
  const result = await runCli(server.dataDir, ["backup", backupFile]);
  stop.backingUp = false;
  stop.now = true;
  await running;
  if (result.code !== 0) throw new Error(`backup failed: ${result.stderr}`);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("backup", () => {
  test("should copy the database while the server keeps committing writes", () => {
    expect(load.failed).toBe(0);
    expect(load.duringBackup).toBeGreaterThan(0);
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
  });

  test("should restore-check OK: integrity, latest schema, row counts and an intact audit chain", async () => {
    const { code, stdout } = await runCli(server.dataDir, ["restore-check", backupFile]);
    expect(stdout).toContain("integrity    ok");
    expect(stdout).toMatch(/schema\s+\d{4}_\w+ \(latest\)/);
    expect(stdout).toMatch(/audit chain\s+intact: \d+ events/);
    expect(stdout).toMatch(/master key\s+opens every sealed value \([1-9]\d*\)/);
    expect(stdout).toContain("OK: the backup can be restored");
    expect(code).toBe(0);
    const copy = new Database(backupFile, { readonly: true });
    const revocations = copy.query<{ n: number }, []>("SELECT count(*) AS n FROM revoked_tokens").get()?.n ?? 0;
    copy.close();
    expect(revocations).toBeGreaterThanOrEqual(200);
    expect(stdout).toContain(`revoked_tokens ${revocations}`);
  });

  test("should name a missing directory, without a stack trace or its temp file's name", async () => {
    const target = join(dir, "no-such-dir", "b.db");
    const { code, stderr } = await runCli(server.dataDir, ["backup", target]);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`warden: ${join(dir, "no-such-dir")} does not exist; create it first`);
  });

  test("should refuse to overwrite an existing file", async () => {
    const { code, stderr } = await runCli(server.dataDir, ["backup", backupFile]);
    expect(code).toBe(1);
    expect(stderr).toContain("refusing to overwrite");
  });

  test("should leave /metrics acceptable to promtool after the load", async () => {
    const text = await (await server.fetch("/metrics")).text();
    expect(text).toContain('route="/v1/admin/revocations",status="201"');
    expect(text).toContain("warden_ready 1");
    const result = await promtool(["check", "metrics"], text);
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  });
});

describe("restore-check", () => {
  const copyOf = (name: string) => {
    const file = join(dir, name);
    copyFileSync(backupFile, file);
    return file;
  };

  test("should fail a copy with a damaged page", async () => {
    const file = copyOf("corrupt.db");
    const db = new Database(file, { readonly: true });
    const pageSize = db.query<{ page_size: number }, []>("PRAGMA page_size").get()?.page_size ?? 4096;
    const root =
      db.query<{ rootpage: number }, []>("SELECT rootpage FROM sqlite_master WHERE name = 'audit_events'").get()
        ?.rootpage ?? 2;
    db.close();
    const fd = openSync(file, "r+");
    writeSync(fd, Buffer.alloc(64, 0xab), 0, 64, (root - 1) * pageSize);
    closeSync(fd);

    const { code, stdout, stderr } = await runCli(server.dataDir, ["restore-check", file]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/integrity\s+FAILED: /);
    expect(stderr).toContain("FAILED: do not restore this backup");
    expect(stdout).toBe("");
  });

  test("should fail a copy with an edited audit event, naming the link", async () => {
    const file = copyOf("tampered.db");
    const db = new Database(file);
    db.run("DROP TRIGGER audit_events_no_update");
    db.run("UPDATE audit_events SET outcome = 'failure' WHERE seq = 3");
    db.close();
    const { code, stderr } = await runCli(server.dataDir, ["restore-check", file]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/integrity\s+ok/);
    expect(stderr).toContain("audit chain  FAILED: BROKEN at seq 3");
  });

  test("should pass a trail that begins at an archive checkpoint, naming the archive files to restore with it", async () => {
    const archived = mkdtempSync(join(dir, "archived-"));
    copyFileSync(backupFile, join(archived, "warden.db"));
    copyFileSync(join(server.dataDir, "master.key"), join(archived, "master.key"));
    const { auditKey } = await deriveServerSecrets(loadMasterKey(server.dataDir, undefined));
    const db = openDatabase(archived);
    const { file: archive, throughSeq } = archiveOlderThan(
      db,
      archived,
      Date.now() + 86_400_000,
      systemClock,
      auditKey,
    );
    db.$client.close();
    const { code, stdout } = await runCli(server.dataDir, ["restore-check", join(archived, "warden.db")]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/audit chain\s+intact: 0 events after archived seq/);
    expect(stdout).toContain(`events up to seq ${throughSeq} are only in ${archive}`);
  });

  test("should fail without the key the chain was written with", async () => {
    const { code, stderr } = await runCli(join(dir, "empty-data-dir"), ["restore-check", backupFile]);
    expect(code).toBe(1);
    expect(stderr).toContain("no master key");
    expect(stderr).toContain("no audit key");
  });

  test("should fail with another master key, which could not open the signing keys", async () => {
    const other = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
    const { code, stderr } = await runCli(join(dir, "empty-data-dir"), ["restore-check", backupFile], {
      MASTER_KEY: other,
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/master key\s+FAILED: a sealed value \(\S+\) cannot be unsealed with this master key/);
    // Not "BROKEN at seq 1": nothing says the trail was edited, only that this key cannot check it.
    expect(stderr).toMatch(/audit chain\s+FAILED: cannot verify: .* written with another one/);
    expect(stderr).not.toContain("BROKEN");
  });

  test("should fail a file that is not there, and name usage errors", async () => {
    expect((await runCli(server.dataDir, ["restore-check", join(dir, "missing.db")])).code).toBe(1);
    const usage = await runCli(server.dataDir, ["restore-check"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("usage: warden restore-check <file>");
  });
});
