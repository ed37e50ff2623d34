import { afterAll, describe, expect, test } from "bun:test";
import { createLogger } from "../lib/logger";
import { createAdminWithCli, passwordLogin } from "../testing/cli";
import { startServer, type TestServer } from "../testing/server";
import { type AddressingServer, behindProxies } from "./client-address";

/** A peer at `peer` (what Bun's socket says); the warnings the wrapper logs land in `warnings`. */
function addressing(peer: string, trusted: string[]) {
  const warnings: string[] = [];
  const log = createLogger("warn", { write: (line: string) => warnings.push(line) });
  const server = { requestIP: () => ({ address: peer }), port: 1234 } as AddressingServer & { port: number };
  const wrapped = behindProxies(server, trusted, log);
  const clientOf = (forwardedFor?: string) =>
    wrapped.requestIP(
      new Request("http://localhost/", {
        headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor },
      }),
    )?.address;
  return { clientOf, warnings, wrapped };
}

describe("the client's address behind proxies", () => {
  test.each([
    // peer, trusted proxies, X-Forwarded-For, client
    ["127.0.0.1", ["127.0.0.1"], "203.0.113.9", "203.0.113.9"],
    ["::ffff:127.0.0.1", ["127.0.0.0/8"], "203.0.113.9", "203.0.113.9"],
    ["10.0.0.5", ["10.0.0.0/8"], "203.0.113.9, 10.0.0.7", "203.0.113.9"],
    // The client wrote the leftmost entries itself: only the hop our proxy appended counts.
    ["10.0.0.5", ["10.0.0.0/8"], "198.51.100.1, 203.0.113.9", "203.0.113.9"],
    ["10.0.0.5", ["10.0.0.0/8"], "10.0.0.8, 10.0.0.7", "10.0.0.8"],
    ["::1", ["::1"], "2001:db8::1", "2001:db8::1"],
    // An entry that is no address ends the walk at the last trusted hop.
    ["10.0.0.5", ["10.0.0.0/8"], "203.0.113.9, unknown", "10.0.0.5"],
    ["10.0.0.5", ["10.0.0.0/8"], "", "10.0.0.5"],
    // Not from a trusted proxy: the header is anyone's to send.
    ["198.51.100.4", ["10.0.0.0/8"], "203.0.113.9", "198.51.100.4"],
    ["127.0.0.1", [], "203.0.113.9", "127.0.0.1"],
  ])("peer %s trusting %j, X-Forwarded-For %p → %s", (peer, trusted, header, client) => {
    expect(addressing(peer, trusted).clientOf(header)).toBe(client);
  });

  test("without the header the peer is the client, and the rest of the server is the server's", () => {
    const { clientOf, wrapped, warnings } = addressing("10.0.0.5", ["10.0.0.0/8"]);
    expect(clientOf()).toBe("10.0.0.5");
    expect((wrapped as AddressingServer & { port: number }).port).toBe(1234);
    expect(warnings).toEqual([]);
  });

  test("a forwarded request from an untrusted peer should warn once", () => {
    const { clientOf, warnings } = addressing("127.0.0.1", []);
    clientOf("203.0.113.9");
    clientOf("203.0.113.10");
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: "warn", peer: "127.0.0.1" });
    expect(warnings[0]).toContain("TRUSTED_PROXIES");
  });
});

describe("behind a trusted proxy, over a real socket", () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const server of servers) await server.stop();
  });
  const start = async (env: Record<string, string>) => {
    const server = await startServer({ env: { RATE_LIMIT_AUTH_PER_MINUTE: "2", ...env } });
    servers.push(server);
    return server;
  };
  const badLogin = (server: TestServer, forwardedFor: string) =>
    server.fetch("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": forwardedFor },
      body: JSON.stringify({ grant_type: "password", tenant: "acme", username: "ops@acme.test", password: "wrong" }),
    });

  test("the token endpoint's limit and the audit trail should follow the forwarded client", async () => {
    const server = await start({ TRUSTED_PROXIES: "127.0.0.1,::1" });
    const admin = await createAdminWithCli(server.dataDir, { tenant: "acme", email: "ops@acme.test" });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await badLogin(server, "203.0.113.1")).status);
    expect(statuses).toEqual([400, 400, 429]);
    // Another client behind the same proxy has a limit of its own.
    expect((await badLogin(server, "203.0.113.2")).status).toBe(400);

    const token = await passwordLogin(server, admin);
    const res = await server.fetch("/v1/audit?action=auth.login_failed", {
      headers: { authorization: `Bearer ${token}` },
    });
    const ips = (await res.json()).events.map((event: { ip: string }) => event.ip);
    expect(ips).toContain("203.0.113.2");
    expect(ips).not.toContain("127.0.0.1");
  });

  test("without TRUSTED_PROXIES a forged header should not buy another limit, and the log should say why", async () => {
    const server = await start({});
    expect((await badLogin(server, "203.0.113.1")).status).toBe(400);
    expect((await badLogin(server, "203.0.113.2")).status).toBe(400);
    expect((await badLogin(server, "203.0.113.3")).status).toBe(429);
    const warnings = server.logs.filter((line) => String(line.msg).includes("X-Forwarded-For"));
    expect(warnings).toHaveLength(1);
  });
});
