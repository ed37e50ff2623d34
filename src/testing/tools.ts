import { spawnSync } from "node:child_process";

/** Path of a system tool the tests need, or a clear failure saying how to get it (never a skip). */
export function requireTool(command: string, pkg: string): string {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" }).stdout.trim();
  if (!found)
    throw new Error(`${command} is not installed: run \`npm test\` (it installs it) or \`apt-get install ${pkg}\``);
  return found;
}

/** Runs `cmd` to its end: what it wrote to stdout and stderr, and its exit code. */
export async function runToEnd(
  cmd: string[],
  options: { input?: string; cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  const proc = Bun.spawn(cmd, {
    stdin: options.input === undefined ? "ignore" : new Blob([options.input]),
    stdout: "pipe",
    stderr: "pipe",
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}

/** Runs promtool with `input` on stdin; returns its exit code and combined output. */
export async function promtool(args: string[], input?: string): Promise<{ code: number; output: string }> {
  const { stdout, stderr, code } = await runToEnd([requireTool("promtool", "prometheus"), ...args], { input });
  return { code, output: (stdout + stderr).trim() };
}
