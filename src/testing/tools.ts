import { spawnSync } from "node:child_process";

/** Path of a system tool the tests need, or a clear failure saying how to get it (never a skip). */
export function requireTool(command: string, pkg: string): string {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" }).stdout.trim();
  if (!found)
    throw new Error(`${command} is not installed: run \`npm test\` (it installs it) or \`apt-get install ${pkg}\``);
  return found;
}

/** Runs promtool with `input` on stdin; returns its exit code and combined output. */
export async function promtool(args: string[], input?: string): Promise<{ code: number; output: string }> {
  const proc = Bun.spawn([requireTool("promtool", "prometheus"), ...args], {
    stdin: input === undefined ? "ignore" : new Blob([input]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, output: (stdout + stderr).trim() };
}
