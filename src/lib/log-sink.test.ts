import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "warden-log-sink-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `body` after a logger on the real stdout sink logged "first" under load and "last" alone. */
async function run(name: string, body: string): Promise<string> {
  const script = join(dir, `${name}.ts`);
  writeFileSync(
    script,
    `import { createLogger } from ${JSON.stringify(join(import.meta.dir, "logger.ts"))};
const log = createLogger("info");
for (let i = 0; i < 1000; i++) log.info({ i }, "first");
log.warn("last");
${body}`,
  );
  const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
  const stdout = await new Response(child.stdout).text();
  await child.exited;
  return stdout;
}

test.each([
  ["a crash a moment later", 'setTimeout(() => { throw new Error("boom"); }, 1);'],
  ["process.exit a moment later", "setTimeout(() => process.exit(1), 1);"],
  ["process.exit at once", "process.exit(3);"],
])("lines still waiting to be written survive %s", async (name, body) => {
  const lines = (await run(name.replace(/\W+/g, "-"), body)).trim().split("\n");
  expect(lines).toHaveLength(1001);
  expect(JSON.parse(lines[0] as string)).toMatchObject({ msg: "first", i: 0 });
  expect(JSON.parse(lines[1000] as string)).toMatchObject({ msg: "last" });
});
