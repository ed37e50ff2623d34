import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CompactSign, createRemoteJWKSet, decodeProtectedHeader, generateKeyPair, type JWK, jwtVerify } from "jose";
import { type CreatedAdmin, createAdminWithCli, passwordLogin, runCliOrThrow } from "../../testing/cli";
import { waitFor } from "../../testing/ports";
import { type ServerOptions, startServer, type TestServer } from "../../testing/server";

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k"];

/** `keys rotate`; returns the kids it made current and next. */
async function rotate(dataDir: string): Promise<{ current: string; next: string }> {
  const out = await runCliOrThrow(dataDir, ["keys", "rotate", "--force"]);
  const match = /signing key (\w+) is now current; (\w+) is published as next/.exec(out);
  if (!match?.[1] || !match[2]) throw new Error(`unexpected keys rotate output: ${out}`);
  return { current: match[1], next: match[2] };
}

async function meStatus(server: TestServer, token: string): Promise<number> {
  const res = await server.fetch("/v1/auth/me", { headers: { authorization: `Bearer ${token}` } });
  await res.body?.cancel();
  return res.status;
}

async function jwks(server: TestServer): Promise<{ keys: JWK[]; cacheControl: string | null }> {
  const res = await server.fetch("/.well-known/jwks.json");
  expect(res.status).toBe(200);
  return { ...((await res.json()) as { keys: JWK[] }), cacheControl: res.headers.get("cache-control") };
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid;

/** What a third party does: fetch our JWKS and verify with the pinned issuer, audience and type. */
function verifyRemotely(server: TestServer, token: string, alg = "EdDSA") {
  const keySet = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));
  return jwtVerify(token, keySet, { issuer: "warden", audience: "warden-api", typ: "at+jwt", algorithms: [alg] });
}

/** A server on `options` with an admin created through the CLI; stopped whatever `body` does. */
async function withServer(
  options: ServerOptions,
  body: (server: TestServer, admin: CreatedAdmin) => Promise<void>,
): Promise<void> {
  const server = await startServer(options);
  try {
    await body(server, await createAdminWithCli(server.dataDir, { tenant: "acme", email: "a@acme.test" }));
  } finally {
    await server.stop();
  }
}

describe("JWKS over real HTTP", () => {
  test("a third-party verifier should accept our access token through the published JWKS", async () => {
    await withServer({}, async (server, admin) => {
      const token = await passwordLogin(server, admin);
      const { payload, protectedHeader } = await verifyRemotely(server, token);
      expect(protectedHeader).toMatchObject({ alg: "EdDSA", typ: "at+jwt" });
      expect(payload).toMatchObject({ iss: "warden", aud: "warden-api", sub: admin.user_id, tid: "acme" });
      expect(payload.role).toBe("admin");
    });
  }, 60_000);

  test("should publish exactly the current and next public keys, cacheable", async () => {
    await withServer({}, async (server, admin) => {
      const { keys, cacheControl } = await jwks(server);
      expect(cacheControl).toMatch(/max-age=\d+/);
      expect(keys).toHaveLength(2);
      for (const key of keys) {
        expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
        expect(key.kid).toMatch(/^[0-9a-z]{16}$/);
        for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
      }
      expect(new Set(keys.map((key) => key.kid)).size).toBe(2);
      // The current key comes first and is the one that signs.
      expect(kidOf(await passwordLogin(server, admin))).toBe(keys[0]?.kid);
    });
  }, 60_000);

  test("should pick up a CLI rotation while running, and keep the rotated-out key verifying", async () => {
    await withServer({}, async (server, admin) => {
      const used = await passwordLogin(server, admin);
      const unused = await passwordLogin(server, admin);
      expect(await meStatus(server, used)).toBe(200);
      const before = (await jwks(server)).keys.map((key) => key.kid);

      const rotated = await rotate(server.dataDir);
      expect(rotated.current).toBe(before[1] ?? "");

      let keys: JWK[] = [];
      await waitFor(
        async () => {
          keys = (await jwks(server)).keys;
          return keys.length === 3;
        },
        // The ring reloads every 10 s; the rest is slack for a loaded machine.
        15_000,
        "the JWKS to list the rotated key ring",
      );
      expect(keys.map((key) => key.kid)).toEqual([rotated.current, rotated.next, before[0] ?? ""]);

      const fresh = await passwordLogin(server, admin);
      expect(kidOf(fresh)).toBe(rotated.current);
      expect(await meStatus(server, fresh)).toBe(200);
      // Signed before the rotation: one already verified (cached), one verified for the first time now.
      expect(await meStatus(server, used)).toBe(200);
      expect(await meStatus(server, unused)).toBe(200);
      expect(kidOf(unused)).toBe(before[0]);

      expect((await verifyRemotely(server, fresh)).protectedHeader.kid).toBe(rotated.current);
      expect((await verifyRemotely(server, unused)).protectedHeader.kid).toBe(before[0]);
    });
  }, 60_000);

  test("should reload its key ring at once when a token names a kid it does not know", async () => {
    await withServer({}, async (server) => {
      const rotated = await rotate(server.dataDir);
      // The new next kid is unknown to the running server until it reloads.
      const { privateKey } = await generateKeyPair("EdDSA");
      const probe = await new CompactSign(new TextEncoder().encode("{}"))
        .setProtectedHeader({ alg: "EdDSA", kid: rotated.next, typ: "at+jwt" })
        .sign(privateKey);
      const res = await server.fetch("/v1/auth/me", { headers: { authorization: `Bearer ${probe}` } });
      expect(res.status).toBe(401);
      // Known now, so the forged signature is what fails, not the kid lookup.
      expect(res.headers.get("www-authenticate")).toContain('error_description="the token signature is invalid"');
      expect((await jwks(server)).keys.map((key) => key.kid)).toContain(rotated.next);
    });
  }, 60_000);

  test("should keep its keys across a restart on the same data directory", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "warden-jwks-"));
    try {
      let token = "";
      let kids: (string | undefined)[] = [];
      await withServer({ dataDir }, async (server, admin) => {
        token = await passwordLogin(server, admin);
        expect(await meStatus(server, token)).toBe(200);
        kids = (await jwks(server)).keys.map((key) => key.kid);
      });
      const again = await startServer({ dataDir });
      try {
        expect(await meStatus(again, token)).toBe(200);
        expect((await jwks(again)).keys.map((key) => key.kid)).toEqual(kids);
      } finally {
        await again.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  test.each([
    ["ES256", "EC"],
    ["RS256", "RSA"],
  ])(
    "should sign and accept %s tokens when JWT_ALG selects it",
    async (alg, kty) => {
      await withServer({ env: { JWT_ALG: alg } }, async (server, admin) => {
        const token = await passwordLogin(server, admin);
        expect(decodeProtectedHeader(token)).toMatchObject({ alg, typ: "at+jwt" });
        expect(await meStatus(server, token)).toBe(200);
        const { keys } = await jwks(server);
        expect(keys).toHaveLength(2);
        for (const key of keys) {
          expect(key).toMatchObject({ kty, alg, use: "sig" });
          for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
        }
        expect((await verifyRemotely(server, token, alg)).payload.sub).toBe(admin.user_id);
      });
    },
    60_000,
  );
});
