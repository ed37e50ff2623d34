import { expect } from "bun:test";
import type { Role } from "../../db/schema";
import { MAIN, type TestServer } from "./server";

// Longer than any CLI command takes on a loaded machine, shorter than the 30 s test timeout,
// so a hung child is killed and reported by its exit code rather than outliving the test.
const CLI_TIMEOUT_MS = 20_000;

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** What `admin create --json` prints. */
export interface CreatedAdmin {
  tenant_id: string;
  user_id: string;
  email: string;
  password: string;
  role: Role;
  api_key: string;
}

/** Runs the real CLI on `dataDir`, as an operator would; `env` overrides the environment. Never throws on the exit code. */
export async function runCli(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    // Loopback and port 0 so that a `serve` which gets past its checks cannot take a real port.
    env: { ...process.env, DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), CLI_TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { stdout, stderr, code };
}

/** Like `runCli`, for a command the test relies on: throws with its stderr unless it exits 0; its stdout. */
export async function runCliOrThrow(dataDir: string, args: string[]): Promise<string> {
  const { stdout, stderr, code } = await runCli(dataDir, args);
  if (code !== 0) throw new Error(`warden ${args.join(" ")} exited with ${code}: ${stderr}`);
  return stdout;
}

/** `admin create --json` on `dataDir`; the created admin, password and API key included. */
export async function createAdminWithCli(
  dataDir: string,
  who: { tenant: string; email: string; role?: Role },
): Promise<CreatedAdmin> {
  const args = ["admin", "create", "--tenant", who.tenant, "--email", who.email, "--json"];
  if (who.role) args.push("--role", who.role);
  return JSON.parse(await runCliOrThrow(dataDir, args)) as CreatedAdmin;
}

/**
 * Logs `who` in with the password grant on POST /v1/auth/token, expecting 200; the access token.
 * `body` picks the request encoding: the endpoint takes JSON and, as OAuth clients send it, a form.
 */
export async function passwordLogin(
  server: TestServer,
  who: Pick<CreatedAdmin, "tenant_id" | "email" | "password">,
  body: "json" | "form" = "json",
): Promise<string> {
  const fields = { grant_type: "password", tenant: who.tenant_id, username: who.email, password: who.password };
  const res = await server.fetch("/v1/auth/token", {
    method: "POST",
    ...(body === "form"
      ? { headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields) }
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(fields) }),
  });
  const text = await res.text();
  // An expect rather than a throw, so that it counts as the test's assertion; the body says why it was refused.
  expect(res.status, `password login for ${who.email} failed: ${res.status} ${text}`).toBe(200);
  return (JSON.parse(text) as { access_token: string }).access_token;
}
