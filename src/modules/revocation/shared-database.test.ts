import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CreatedAdmin, createAdminWithCli, passwordLogin } from "../../testing/cli";
import { startServer, type TestServer } from "../../testing/server";
import { REVOCATION_POLL_MS } from "../auth/setup";

// Two processes on one database and no Redis (an HTTP-only process beside a dispatching one):
// each polls the revocation log, so one's revocation reaches the other within a poll or two.
const PROPAGATION_LIMIT_MS = REVOCATION_POLL_MS * 4;

let dataDir: string;
let a: TestServer;
let b: TestServer;
let admin: CreatedAdmin;
let adminToken: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "warden-shared-db-"));
  admin = await createAdminWithCli(dataDir, { tenant: "acme", email: "a@acme.test" });
  [a, b] = (await Promise.all(
    [{ WEBHOOK_DISPATCH: "true" }, { WEBHOOK_DISPATCH: "false" }].map((env) =>
      startServer({ dataDir, env: { RATE_LIMIT_ENABLED: "false", ...env } }),
    ),
  )) as [TestServer, TestServer];
  adminToken = await passwordLogin(a, admin);
});

afterAll(async () => {
  await Promise.all([a, b].filter(Boolean).map((server) => server.stop()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const me = (server: TestServer, token: string) =>
  server.fetch("/v1/auth/me", { headers: { authorization: `Bearer ${token}` } }).then((res) => res.status);

async function msUntilRefused(server: TestServer, token: string): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < 5000) {
    const status = await me(server, token);
    if (status === 401) return performance.now() - start;
    expect(status).toBe(200);
    await Bun.sleep(10);
  }
  return Number.POSITIVE_INFINITY;
}

test("a logout on one process refuses the token on the other, without Redis", async () => {
  const token = await passwordLogin(a, admin);
  expect(await me(b, token)).toBe(200);
  const logout = await a.fetch("/v1/auth/logout", { method: "POST", headers: { authorization: `Bearer ${token}` } });
  expect(logout.status).toBe(204);
  expect(await me(a, token)).toBe(401);
  expect(await msUntilRefused(b, token)).toBeLessThan(PROPAGATION_LIMIT_MS);
});

test("a user disabled on one process is refused on the other, writes included", async () => {
  const created = await b.fetch("/v1/admin/users", {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ email: "dev@acme.test", role: "developer", password: "correct horse battery staple" }),
  });
  expect(created.status).toBe(201);
  const { user } = (await created.json()) as { user: { id: string } };
  const devToken = await passwordLogin(b, {
    tenant_id: "acme",
    email: "dev@acme.test",
    password: "correct horse battery staple",
  });
  const disabled = await a.fetch(`/v1/admin/users/${user.id}/disable`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}` },
  });
  expect(disabled.status).toBe(200);
  expect(await msUntilRefused(b, devToken)).toBeLessThan(PROPAGATION_LIMIT_MS);
  const write = await b.fetch("/v1/notifications", {
    method: "POST",
    headers: { authorization: `Bearer ${devToken}`, "content-type": "application/json" },
    body: JSON.stringify({ recipients: { role: "admin" }, type: "t.x", title: "after the disable" }),
  });
  expect(write.status).toBe(401);
});
