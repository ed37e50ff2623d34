import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "./testing/server";

const outDir = mkdtempSync(join(tmpdir(), "warden-build-"));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe("single executable", () => {
  test("bun build --compile should produce one binary that migrates and serves", async () => {
    const binary = join(outDir, "warden");
    // The entrypoints of package.json's "build": the server and the WAL checkpointer's thread.
    const { scripts } = (await Bun.file(join(import.meta.dir, "..", "package.json")).json()) as {
      scripts: { build: string };
    };
    const entrypoints = scripts.build.split(" ").filter((word) => word.endsWith(".ts"));
    expect(entrypoints).toEqual(["src/main.ts", "db/checkpoint-thread.ts"]);
    const build = Bun.spawnSync(
      [
        process.execPath,
        "build",
        "--compile",
        ...entrypoints.map((file) => join(import.meta.dir, "..", file)),
        "--outfile",
        binary,
      ],
      { stdout: "pipe", stderr: "pipe" },
    );
    expect(build.stderr.toString()).not.toContain("error");
    expect(build.exitCode).toBe(0);

    // Run it from an empty directory: nothing but the binary itself is there to read.
    const server = await startServer({ command: [binary] });
    try {
      expect((await server.fetch("/health")).status).toBe(200);
      const ready = await server.fetch("/ready");
      expect(ready.status).toBe(200);
      expect((await ready.json()).checks.sqlite.status).toBe("up");
      const bundle = await server.fetch("/swagger/assets/swagger-ui-bundle.js");
      expect(bundle.status).toBe(200);
      expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
      const icon = await server.fetch("/swagger/assets/favicon-32x32.png");
      expect([icon.status, icon.headers.get("content-type")]).toEqual([200, "image/png"]);
      await icon.arrayBuffer();
      expect(Object.keys((await (await server.fetch("/swagger/json")).json()).paths)).toContain("/ready");
      const script = await server.fetch("/admin/assets/dashboard.js");
      expect(script.status).toBe(200);
      expect(await script.text()).toContain("/v1/webhooks/deliveries");
      // The checkpointer's thread is a second module inside the binary: it must have been found.
      const messages = () => server.logs.map((line) => line.msg);
      for (
        let waited = 0;
        !messages().includes("WAL checkpoints run on a background thread") && waited < 5000;
        waited += 50
      )
        await Bun.sleep(50);
      expect(messages()).toContain("WAL checkpoints run on a background thread");
      expect(messages()).not.toContain("background WAL checkpoint failed");
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 120_000);
});
