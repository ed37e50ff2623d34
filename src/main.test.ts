import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAIN, startServer } from "./testing/server";

const dataDir = mkdtempSync(join(tmpdir(), "warden-cli-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function cli(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    env: { ...process.env, DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { stdout, stderr, code };
}

describe("CLI", () => {
  test.each([
    ["PORT", "abc", "an integer from 0 to 65535"],
    ["REDIS_URL", "notaurl", "a redis:// or rediss:// URL"],
    ["LOG_LEVEL", "chatty", "one of fatal"],
    ["ACCESS_TOKEN_TTL", "soon", "a positive duration"],
  ])("should refuse to start with %s=%s in one clear line", async (name, value, expected) => {
    const { code, stderr, stdout } = await cli(["serve"], { [name]: value });
    expect(code).toBe(2);
    expect(stdout).toBe("");
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toStartWith(`warden: invalid configuration: ${name}: expected `);
    expect(lines[0]).toContain(expected);
    expect(stderr).not.toContain("    at ");
  });

  test("should refuse to start in production without an audit key", async () => {
    const { code, stderr } = await cli(["serve"], { NODE_ENV: "production" });
    expect(code).toBe(2);
    expect(stderr).toContain("AUDIT_KEY");
  });

  test("help should list the commands", async () => {
    const { code, stdout } = await cli(["help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("serve");
    expect(stdout).toContain("migrate");
  });

  test("an unknown command should exit 2 with the usage", async () => {
    const { code, stderr } = await cli(["frobnicate"]);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown command "frobnicate"');
  });

  test("migrate should create the database and exit 0", async () => {
    const { code, stdout } = await cli(["migrate"]);
    expect(code).toBe(0);
    expect(stdout).toContain("up to date");
    expect(await Bun.file(join(dataDir, "warden.db")).exists()).toBe(true);
  });

  test("serve should say where it listens and where the Swagger page is", async () => {
    const server = await startServer();
    try {
      const line = server.logs.find((entry) => typeof entry.url === "string");
      expect(line?.docs).toBe(`${server.url}/swagger`);
      expect(String(line?.msg)).toContain(`${server.url}/swagger`);
      expect((await server.fetch("/health")).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
