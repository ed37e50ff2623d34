#!/usr/bin/env node
// Runs before `npm start` and `npm test` with nothing but Node.js and npm: installs the npm
// dependencies (Bun among them) when they are missing or stale and, for the tests, the system
// tools they use (redis-server, promtool, chromium) through apt-get when it can.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const forTests = process.argv.includes("--test");

function run(command, args) {
  execFileSync(command, args, { cwd: root, stdio: "inherit" });
}

function depsStale() {
  const installed = join(root, "node_modules", ".package-lock.json");
  if (!existsSync(installed) || !existsSync(join(root, "node_modules", ".bin", "bun"))) return true;
  return statSync(join(root, "package-lock.json")).mtimeMs > statSync(installed).mtimeMs;
}

// `npm install` rather than `npm ci`: with this machine's npm settings (lockfiles without
// resolved URLs) npm ci rejects even a freshly written lockfile over other platforms' optional
// packages. install still follows the lockfile's versions.
if (depsStale()) {
  console.error("setup: installing npm dependencies (npm install)");
  run("npm", ["install", "--no-audit", "--no-fund"]);
}

if (forTests) {
  const tools = [
    { command: "redis-server", pkg: "redis-server" },
    { command: "promtool", pkg: "prometheus" },
    { command: "chromium", pkg: "chromium" },
  ];
  const has = (command) => spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
  const missing = tools.filter((tool) => !has(tool.command));
  if (missing.length > 0) {
    const pkgs = missing.map((tool) => tool.pkg);
    const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
    if (!isRoot || !has("apt-get")) {
      console.error(
        `setup: the tests need ${missing.map((t) => t.command).join(", ")}; install: apt-get install ${pkgs.join(" ")}`,
      );
      process.exit(1);
    }
    console.error(`setup: installing ${pkgs.join(" ")} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    execFileSync("apt-get", ["install", "-y", "-qq", ...pkgs], { stdio: "inherit", env });
  }
}
