import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrations } from "../db/migrations";
import { passwordLogin, runCli } from "./testing/cli";
import { startServer } from "./testing/server";

const dataDir = mkdtempSync(join(tmpdir(), "warden-cli-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const cli = (args: string[], env: Record<string, string> = {}) => runCli(dataDir, args, env);

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
    expect(stdout).toContain("backup <file>");
    expect(stdout).toContain("restore-check <file>");
  });

  test("an unknown command should exit 2 with the usage", async () => {
    const { code, stderr } = await cli(["frobnicate"]);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown command "frobnicate"');
  });

  test.each([[["serve", "--port", "9000"]], [["migrate", "now"]]])(
    "%j should exit 2: configuration comes from the environment only",
    async (args) => {
      const { code, stderr } = await cli(args);
      expect(code).toBe(2);
      expect(stderr).toContain("takes no arguments");
    },
  );

  test("a SIGTERM to `npm start` should reach the server and shut it down gracefully", async () => {
    const home = mkdtempSync(join(tmpdir(), "warden-npm-start-"));
    const npm = Bun.spawn(["npm", "start", "--silent"], {
      cwd: join(import.meta.dir, ".."),
      env: { ...process.env, HOST: "127.0.0.1", PORT: "0", DATA_DIR: home, LOG_LEVEL: "info" },
      stdout: "pipe",
      stderr: "ignore",
    });
    try {
      const reader = npm.stdout.getReader();
      let output = "";
      const started = Date.now();
      while (!output.includes('"url"') && Date.now() - started < 30_000) {
        const { value, done } = await reader.read();
        if (done) break;
        output += new TextDecoder().decode(value);
      }
      const url = String(JSON.parse(output.split("\n").find((line) => line.includes('"url"')) ?? "{}").url);
      expect((await fetch(`${url}health`)).status).toBe(200);
      npm.kill("SIGTERM");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        output += new TextDecoder().decode(value);
      }
      expect(output).toContain("shutdown complete");
      await npm.exited;
      expect(
        await fetch(`${url}health`).then(
          () => "served",
          () => "refused",
        ),
      ).toBe("refused");
    } finally {
      npm.kill("SIGKILL");
      rmSync(home, { recursive: true, force: true });
    }
  });

  test("a port already taken should stop start-up with one line naming where it tried", async () => {
    const server = await startServer();
    try {
      const port = new URL(server.url).port;
      const { code, stderr } = await cli(["serve"], { HOST: "127.0.0.1", PORT: port });
      expect(code).toBe(1);
      expect(stderr.trim()).toStartWith(`warden: cannot listen on 127.0.0.1:${port}:`);
      expect(stderr).not.toContain("    at ");
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  describe("a DATA_DIR that cannot hold the database stops the command with one line naming it", () => {
    const file = join(dataDir, "not-a-directory");
    beforeAll(() => writeFileSync(file, ""));
    const where = {
      "a file": [file, "it is a file, not a directory"],
      "under a file": [join(file, "data"), "a part of its path is a file, not a directory"],
    } as const;
    // Those that create a database, and those that refuse a DATA_DIR holding none.
    const commands = [
      ["serve"],
      ["migrate"],
      ["admin", "create", "--tenant", "a", "--email", "a@a.test"],
      ["audit", "verify"],
      ["keys", "rotate"],
    ];
    test.each(commands.flatMap((args) => Object.keys(where).map((place) => [args, place] as const)))(
      "%j with DATA_DIR %s",
      async (args, place) => {
        const [dir, problem] = where[place as keyof typeof where];
        const { code, stdout, stderr } = await runCli(dir, args);
        expect(code).toBe(2);
        expect(stdout).toBe("");
        expect(stderr).toBe(`warden: invalid configuration: cannot use DATA_DIR ${dir}: ${problem}\n`);
      },
    );

    // A directory no user may write, root included (root writes anywhere else, and the suite may
    // run as root): the kernel's sysctl directories refuse new entries to everyone.
    test("migrate with a DATA_DIR it cannot write", async () => {
      const readOnly = "/proc/sys/kernel";
      const { code, stderr } = await runCli(readOnly, ["migrate"]);
      expect(code).toBe(2);
      expect(stderr).toBe(
        `warden: invalid configuration: cannot use DATA_DIR ${readOnly}: it is not writable by this user\n`,
      );
    });
  });

  test("migrate should create the database, say how many migrations it applied, and exit 0", async () => {
    const fresh = mkdtempSync(join(tmpdir(), "warden-migrate-"));
    try {
      const first = await runCli(fresh, ["migrate"]);
      expect(first.code).toBe(0);
      expect(first.stdout).toContain(`applied ${migrations.length} migrations; up to date`);
      expect(await Bun.file(join(fresh, "warden.db")).exists()).toBe(true);
      const again = await runCli(fresh, ["migrate"]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("is up to date (nothing to apply)");
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
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

  test("serve beyond loopback with private webhook targets allowed should warn, once, and not without them", async () => {
    const warned = async (env: Record<string, string>) => {
      const server = await startServer({ env: { HOST: "0.0.0.0", ...env } });
      try {
        return server.logs.filter((entry) => entry.webhook_allow_private === true && entry.level === "warn").length;
      } finally {
        await server.stop();
      }
    };
    expect(await warned({ WEBHOOK_ALLOW_PRIVATE: "true" })).toBe(1);
    expect(await warned({ WEBHOOK_ALLOW_PRIVATE: "false" })).toBe(0);
  });

  test("admin create --json should print one JSON object whose password and key work on a running server", async () => {
    const server = await startServer({ dataDir });
    try {
      const { code, stdout, stderr } = await cli([
        "admin",
        "create",
        "--tenant",
        "acme",
        "--email",
        "Ops@Acme.test",
        "--json",
      ]);
      expect(stderr).toBe("");
      expect(code).toBe(0);
      const lines = stdout.trim().split("\n");
      expect(lines).toHaveLength(1);
      const created = JSON.parse(lines[0] ?? "");
      expect(Object.keys(created).sort()).toEqual(["api_key", "email", "password", "role", "tenant_id", "user_id"]);
      expect(created).toMatchObject({ tenant_id: "acme", email: "ops@acme.test", role: "admin" });

      await passwordLogin(server, created, "form");
      const byKey = await server.fetch("/v1/auth/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "client_credentials", client_secret: created.api_key }),
      });
      expect(byKey.status).toBe(200);
      const auth = { authorization: `Bearer ${(await byKey.json()).access_token}` };
      const me = await server.fetch("/v1/auth/me", { headers: auth });
      expect((await me.json()).sub).toBe(created.user_id);
      // The peer address reaches sessions and the audit trail over a real socket.
      const sessions = await (await server.fetch("/v1/auth/sessions", { headers: auth })).json();
      expect(sessions.sessions.map((s: { ip: string | null }) => s.ip)).toContain("127.0.0.1");
      const audit = await (await server.fetch("/v1/audit?action=token.issue", { headers: auth })).json();
      expect(audit.events[0]).toMatchObject({ action: "token.issue", ip: "127.0.0.1" });
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  test.each([
    [["admin", "create", "--tenant", "Bad Slug", "--email", "a@b.test"], "--tenant"],
    [["admin", "create", "--tenant", "acme", "--email", "nope"], "--email"],
    [["admin", "create", "--tenant", "acme", "--email", "a@b.test", "--role", "root"], "--role"],
    [["admin", "create", "--tenant", "acme", "--email", "a@b.test", "--bogus"], "bogus"],
    [["admin", "delete"], "usage"],
    [["admin", "create", "--tenant", "a", "--tenant", "b", "--email", "a@b.test"], "--tenant is given twice"],
    [["admin", "create", "--tenant", "a", "--email", "a@b.test", "--email=b@b.test"], "--email is given twice"],
    [["admin", "create", "--tenant", "a", "--email", "a@b.test", "--json", "--json"], "--json is given twice"],
    [["audit", "verify", "extra"], "no arguments"],
    [["audit", "key", "extra"], "no arguments"],
    [["audit", "sign-checkpoints", "--yes"], "no arguments"],
    [["keys", "shred"], "usage"],
  ])("%j should exit 2 naming %s", async (args, mention) => {
    const { code, stderr } = await cli(args);
    expect(code).toBe(2);
    expect(stderr).toContain(mention);
    expect(stderr).not.toContain("    at ");
  });

  test("admin create should refuse a duplicate email without a stack trace", async () => {
    await cli(["admin", "create", "--tenant", "dup", "--email", "same@dup.test"]);
    const { code, stderr } = await cli(["admin", "create", "--tenant", "dup", "--email", "same@dup.test"]);
    expect(code).toBe(1);
    expect(stderr).toContain("already exists");
    expect(stderr).not.toContain("    at ");
  });

  test("keys rotate should refuse while the next key is younger than the JWKS cache, unless forced", async () => {
    const own = mkdtempSync(join(tmpdir(), "warden-rotate-"));
    try {
      expect((await runCli(own, ["migrate"])).code).toBe(0);
      expect((await runCli(own, ["keys", "rotate"])).code).toBe(0);
      const again = await runCli(own, ["keys", "rotate"]);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain("the next key was published");
      expect(again.stderr).toContain("or pass --force");
      expect(again.stdout).toBe("");
      expect((await runCli(own, ["keys", "rotate", "--force"])).stdout).toContain("is now current");
      expect((await runCli(own, ["keys", "rotate", "--now"])).code).toBe(2);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  test.each([
    [["keys", "rotate"]],
    [["keys", "rotate", "--force"]],
    [["audit", "verify"]],
    [["audit", "key"]],
    [["audit", "sign-checkpoints"]],
    [["backup", "copy.db"]],
  ])("%j on a DATA_DIR without a database should exit 1 naming it, and create nothing there", async (args) => {
    const typo = join(dataDir, `typo-${args.join("-")}`);
    const { code, stdout, stderr } = await runCli(typo, args);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr.trim()).toBe(`warden: no database at ${typo}/warden.db: check DATA_DIR`);
    expect(existsSync(typo)).toBe(false);
  });

  test("a server started with another master key than its data's stops with one line saying so", async () => {
    const own = mkdtempSync(join(tmpdir(), "warden-master-"));
    try {
      expect((await runCli(own, ["migrate"])).code).toBe(0);
      expect((await runCli(own, ["keys", "rotate"])).code).toBe(0);
      const other = Buffer.alloc(32, 7).toString("base64");
      const { code, stderr } = await runCli(own, ["serve"], { MASTER_KEY: other, PORT: "0" });
      expect(code).toBe(1);
      expect(stderr).toContain("cannot be unsealed with this master key");
      expect(stderr).not.toContain("    at ");
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  test("a server started with another audit key than its trail's stops with one line, and audit key carries a trail to production", async () => {
    const own = mkdtempSync(join(tmpdir(), "warden-audit-key-"));
    try {
      // Begun in development: the chain's key derives from the master key.
      expect((await runCli(own, ["admin", "create", "--tenant", "acme", "--email", "a@acme.test"], {})).code).toBe(0);
      const production = { NODE_ENV: "production", PORT: "0", HOST: "127.0.0.1" };
      const wrong = await runCli(own, ["serve"], { ...production, AUDIT_KEY: "p".repeat(32) });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain("written with another audit key");
      expect(wrong.stderr).toContain("warden audit key");
      expect(wrong.stderr).not.toContain("    at ");

      const printed = await runCli(own, ["audit", "key"], {});
      expect(printed.code).toBe(0);
      const value = printed.stdout.trim().replace(/^AUDIT_KEY=/, "");
      expect(value).toMatch(/^base64:[A-Za-z0-9+/]+=*$/);
      // Given a wrong AUDIT_KEY, it still prints the key the trail verifies with.
      const despite = await runCli(own, ["audit", "key"], { AUDIT_KEY: "p".repeat(32) });
      expect(despite.stdout.trim()).toBe(`AUDIT_KEY=${value}`);
      // Without a head record, the last event decides.
      const db = new Database(join(own, "warden.db"));
      db.run("DELETE FROM audit_head");
      db.close();
      const headless = await runCli(own, ["audit", "key"], { AUDIT_KEY: "p".repeat(32) });
      expect(headless.stdout.trim()).toBe(`AUDIT_KEY=${value}`);
      const server = await startServer({ dataDir: own, env: { ...production, AUDIT_KEY: value } });
      try {
        expect((await server.fetch("/health")).status).toBe(200);
      } finally {
        expect(await server.stop()).toBe(0);
      }
      const verified = await runCli(own, ["audit", "verify"], { AUDIT_KEY: value });
      expect(verified.code).toBe(0);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  test("a command on a database whose master key is missing says so, and makes no new key", async () => {
    const own = mkdtempSync(join(tmpdir(), "warden-no-master-"));
    try {
      expect((await runCli(own, ["admin", "create", "--tenant", "acme", "--email", "a@acme.test"], {})).code).toBe(0);
      rmSync(join(own, "master.key"));
      for (const args of [
        ["audit", "verify"],
        ["keys", "rotate", "--force"],
        ["admin", "create", "--tenant", "acme", "--email", "b@acme.test"],
        ["serve"],
      ]) {
        const { code, stderr } = await runCli(own, args, { PORT: "0" });
        expect({ args, code }).toEqual({ args, code: 1 });
        expect(stderr).toContain("no master key");
        expect(existsSync(join(own, "master.key"))).toBe(false);
      }
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  test("a command run with another audit key than the trail's writes nothing and says so", async () => {
    const own = mkdtempSync(join(tmpdir(), "warden-keyed-"));
    const cli = (args: string[], env: Record<string, string>) => runCli(own, args, env);
    const keyed = { AUDIT_KEY: "k".repeat(32) };
    expect((await cli(["admin", "create", "--tenant", "keyed", "--email", "a@keyed.test"], keyed)).code).toBe(0);
    for (const args of [
      ["admin", "create", "--tenant", "keyed", "--email", "b@keyed.test"],
      ["keys", "rotate", "--force"],
    ]) {
      const { code, stderr } = await cli(args, { AUDIT_KEY: "x".repeat(32) });
      expect(code).toBe(1);
      expect(stderr).toContain("does not verify with this audit key");
      expect(stderr).not.toContain("    at ");
    }
    // Nothing was written: the trail still verifies with the key it was written with.
    expect((await cli(["admin", "create", "--tenant", "keyed", "--email", "b@keyed.test"], keyed)).code).toBe(0);
    const verified = await cli(["audit", "verify"], keyed);
    expect(verified.code).toBe(0);
    rmSync(own, { recursive: true, force: true });
  });
});
