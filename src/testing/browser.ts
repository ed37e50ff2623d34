import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireTool } from "./tools";

/**
 * Loads `url` in headless Chromium (Debian's package) with the network locked to what the page
 * itself fetches, lets its scripts run, and returns the rendered DOM and the console output.
 */
export async function renderPage(url: string): Promise<{ dom: string; console: string }> {
  const chromium = requireTool("chromium", "chromium");
  const profile = mkdtempSync(join(tmpdir(), "warden-chromium-"));
  try {
    const proc = Bun.spawn(
      [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        `--user-data-dir=${profile}`,
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
      ],
      { stdout: "pipe", stderr: "pipe" },
    );
    const timer = setTimeout(() => proc.kill("SIGKILL"), 25_000);
    const [dom, console] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    clearTimeout(timer);
    await proc.exited;
    return { dom, console };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
