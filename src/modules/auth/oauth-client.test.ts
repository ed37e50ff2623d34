import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as oauth from "oauth4webapi";
import { type CreatedAdmin, createAdminWithCli } from "../../testing/cli";
import { startServer, type TestServer } from "../../testing/server";

/** A standard OAuth client library (the engine of openid-client) against the real server. */
let server: TestServer;
let admin: CreatedAdmin;
let as: oauth.AuthorizationServer;
const insecure = { [oauth.allowInsecureRequests]: true };

beforeAll(async () => {
  server = await startServer();
  admin = await createAdminWithCli(server.dataDir, { tenant: "acme", email: "ops@acme.test" });
  as = {
    issuer: "warden",
    token_endpoint: `${server.url}/v1/auth/token`,
    revocation_endpoint: `${server.url}/v1/auth/revoke`,
  };
});
afterAll(() => server.stop());

/** An API key `wdn_<id>_<secret>` as a client configured with an id and a secret holds it. */
function split(key: string): { id: string; secret: string } {
  const id = key.slice(4, key.indexOf("_", 4));
  return { id, secret: key.slice(4 + id.length + 1) };
}

async function clientCredentials(client: oauth.Client, auth: oauth.ClientAuth) {
  const response = await oauth.clientCredentialsGrantRequest(as, client, auth, {}, insecure);
  return oauth.processClientCredentialsResponse(as, client, response);
}

describe("a standard OAuth client", () => {
  test.each([
    ["client_secret_post, the whole key as the secret", "whole", "post"],
    ["client_secret_post, id and secret part", "split", "post"],
    ["client_secret_basic, id and secret part", "split", "basic"],
  ])("should get an access token by %s", async (_name, form, method) => {
    const { id, secret } = split(admin.api_key);
    const client = { client_id: id };
    const credential = form === "whole" ? admin.api_key : secret;
    const auth = method === "post" ? oauth.ClientSecretPost(credential) : oauth.ClientSecretBasic(credential);
    const tokens = await clientCredentials(client, auth);
    expect(tokens.token_type).toBe("bearer");
    const me = await server.fetch("/v1/auth/me", { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(me.status).toBe(200);
  });

  test("should read a refused refresh as invalid_grant, and a wrong secret as invalid_client", async () => {
    const client = { client_id: "public" };
    const refresh = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), "wrt_bogus", insecure);
    expect(refresh.headers.get("content-type")).toBe("application/json");
    const refused = await oauth.processRefreshTokenResponse(as, client, refresh).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(oauth.ResponseBodyError);
    expect((refused as oauth.ResponseBodyError).error).toBe("invalid_grant");

    const { id } = split(admin.api_key);
    const wrong = await clientCredentials({ client_id: id }, oauth.ClientSecretPost("not-the-secret")).catch(
      (error: unknown) => error,
    );
    expect((wrong as oauth.ResponseBodyError).error).toBe("invalid_client");
  });

  test("should refresh, then revoke the refresh token so that it no longer works", async () => {
    const { id } = split(admin.api_key);
    const client = { client_id: id };
    const first = await clientCredentials(client, oauth.ClientSecretPost(admin.api_key));
    const refreshToken = first.refresh_token ?? "";
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretPost(admin.api_key), refreshToken, insecure),
    );
    const revoked = await oauth.revocationRequest(
      as,
      client,
      oauth.ClientSecretPost(admin.api_key),
      refreshed.refresh_token ?? "",
      insecure,
    );
    await oauth.processRevocationResponse(revoked);
    const again = await oauth
      .processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(
          as,
          client,
          oauth.ClientSecretPost(admin.api_key),
          refreshed.refresh_token ?? "",
          insecure,
        ),
      )
      .catch((error: unknown) => error);
    expect((again as oauth.ResponseBodyError).error).toBe("invalid_grant");
  });

  test("an empty client_id counts as not sent (RFC 6749 §3.2)", async () => {
    const res = await server.fetch("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: "", client_secret: admin.api_key }),
    });
    expect(res.status).toBe(200);
  });
});
