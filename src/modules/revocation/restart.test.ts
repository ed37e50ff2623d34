import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAdminWithCli, passwordLogin } from "../../testing/cli";
import { startServer, type TestServer } from "../../testing/server";

const dataDir = mkdtempSync(join(tmpdir(), "warden-restart-"));
const running: TestServer[] = [];

afterAll(async () => {
  for (const server of running) await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(): Promise<TestServer> {
  const server = await startServer({ dataDir });
  running.push(server);
  return server;
}

async function stop(server: TestServer): Promise<number> {
  running.splice(running.indexOf(server), 1);
  return server.stop("SIGTERM");
}

function me(server: TestServer, token: string): Promise<Response> {
  return server.fetch("/v1/auth/me", { headers: { authorization: `Bearer ${token}` } });
}

test("revocations made through the API should still hold after a restart on the same data dir", async () => {
  const user = await createAdminWithCli(dataDir, { tenant: "acme", email: "a@acme.test" });
  const first = await start();
  const byAdmin = await passwordLogin(first, user, "form");
  const byLogout = await passwordLogin(first, user, "form");
  const byHolder = await passwordLogin(first, user, "form");
  const kept = await passwordLogin(first, user, "form");
  const admin = await passwordLogin(first, user, "form");

  const meRes = await me(first, byAdmin);
  expect(meRes.status).toBe(200);
  const { token_id: jti } = (await meRes.json()) as { token_id: string };
  const revoked = await first.fetch("/v1/admin/revocations", {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ jti }),
  });
  expect(revoked.status).toBe(201);
  const logout = await first.fetch("/v1/auth/logout", {
    method: "POST",
    headers: { authorization: `Bearer ${byLogout}` },
  });
  expect(logout.status).toBe(204);
  const rfc7009 = await first.fetch("/v1/auth/revoke", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: byHolder }),
  });
  expect(rfc7009.status).toBe(200);
  for (const token of [byAdmin, byLogout, byHolder]) expect((await me(first, token)).status).toBe(401);
  expect((await me(first, kept)).status).toBe(200);

  expect(await stop(first)).toBe(0);
  const second = await start();

  for (const token of [byAdmin, byLogout, byHolder]) {
    const res = await me(second, token);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("the token has been revoked");
  }
  const res = await me(second, kept);
  expect(res.status).toBe(200);
  expect(((await res.json()) as { token_id: string }).token_id).not.toBe(jti);
  expect(await stop(second)).toBe(0);
});
