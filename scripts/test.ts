/**
 * The whole check, as CI runs it: format + lint, type-check, embedded migrations up to date,
 * then every test. Stops at the first failing step; ends with one "N passed, N failed" line.
 */
const bin = (name: string) => `${import.meta.dir}/../node_modules/.bin/${name}`;

const steps: { name: string; cmd: string[] }[] = [
  { name: "format and lint (biome)", cmd: [bin("biome"), "ci", "."] },
  { name: "type-check (tsc)", cmd: [bin("tsc"), "--noEmit", "-p", "."] },
  { name: "type-check k6 scripts (tsc + @types/k6)", cmd: [bin("tsc"), "-p", "loadtest"] },
  { name: "embedded migrations", cmd: [process.execPath, "scripts/embed-migrations.ts", "--check"] },
];

for (const step of steps) {
  console.error(`\n▶ ${step.name}`);
  const result = Bun.spawnSync(step.cmd, { stdout: "inherit", stderr: "inherit" });
  if (result.exitCode !== 0) {
    console.error(`✗ ${step.name} failed`);
    process.exit(result.exitCode || 1);
  }
}

console.error("\n▶ tests (bun test)");
const proc = Bun.spawn([process.execPath, "test", ...process.argv.slice(2)], { stdout: "inherit", stderr: "pipe" });
let output = "";
const decoder = new TextDecoder();
for await (const chunk of proc.stderr) {
  const text = decoder.decode(chunk, { stream: true });
  output += text;
  process.stderr.write(text);
}
const code = await proc.exited;
const count = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}$`, "m").exec(output)?.[1] ?? 0);
const passed = count("pass");
const failed = count("fail");
if (failed > 0) console.error(failureReports(output));
console.log(`\ntests: ${passed} passed, ${failed} failed`);
process.exit(code !== 0 ? code : passed === 0 ? 1 : 0);

/**
 * Each failing test's report (what bun printed between the previous result line and its own),
 * repeated at the end: a log read from its tail still shows why a test failed.
 */
function failureReports(text: string): string {
  const lines = text.split("\n");
  const reports: string[] = [];
  let start = 0;
  for (const [at, line] of lines.entries()) {
    // An error outside any test (a file that fails to load) counts as a failure of its own.
    if (line.startsWith("# Unhandled error")) {
      const next = lines.findIndex((later, i) => i > at && /^(\(pass|\(fail|\S.*\.test\.ts:$)/.test(later));
      reports.push(lines.slice(Math.max(0, at - 2), next === -1 ? at + 40 : next).join("\n"));
    }
    const result = /^\((pass|fail|skip|todo)\)/.exec(line);
    if (!result && !/^\S.*\.test\.ts:$/.test(line)) continue;
    if (result?.[1] === "fail") reports.push(lines.slice(Math.max(start, at - 80), at + 1).join("\n"));
    start = at + 1;
  }
  return `\n▶ failing tests, again\n${reports.join("\n\n")}`;
}
