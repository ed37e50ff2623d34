import { decodeJwt } from "jose";
import type { Role } from "../../db/schema";
import { type Credentials, credentialsFor } from "../modules/admin/identity";
import type { TokenResponse } from "../modules/auth/service";
import { createTestContext, type TestContext } from "./app";
import { seedUser } from "./identity";

export const TENANT_A = "matrix-a";
export const TENANT_B = "matrix-b";

/** A user with an API key of their own role: the key is how fresh sessions are opened cheaply. */
export interface Member {
  readonly tenant: string;
  readonly userId: string;
  readonly role: Role;
  readonly apiKeyId: string;
  readonly apiKey: string;
}

/** One fresh session's tokens, with the claims tests need. */
export interface Token {
  readonly access: string;
  readonly refresh: string;
  readonly jti: string;
  readonly sid: string;
  /** `{ authorization: "Bearer …" }` */
  readonly auth: Record<string, string>;
}

/** A context with tenant A (one member per role) and tenant B (an admin). */
export interface World {
  readonly ctx: TestContext;
  readonly a: Readonly<Record<Role, Member>>;
  readonly bAdmin: Member;
  /** A new session for `member` (client_credentials: no argon2 per call, unlike a password login). */
  token(member: Member): Promise<Token>;
  /** Another access token of the same session, through the refresh grant. */
  refreshed(token: Token): Promise<string>;
  /** A new user of tenant A with its own API key. */
  freshMember(role: Role): Member;
  /** Whether `accessToken` is still accepted. */
  accepts(accessToken: string): Promise<boolean>;
}

let counter = 0;
// ? One argon2 hash shared by every fresh user: hashing per user would cost ~100 ms each.
let shared: Promise<Credentials> | undefined;

function withKey(ctx: TestContext, tenant: string, userId: string, role: Role): Member {
  const { identity } = ctx.deps.security;
  const { key, secret } = ctx.deps.db.transaction((tx) =>
    identity.createApiKey(tx, { tenantId: tenant, userId, name: `matrix-${++counter}`, role }),
  );
  return { tenant, userId, role, apiKeyId: key.id, apiKey: secret };
}

async function grant(ctx: TestContext, body: Record<string, string>): Promise<TokenResponse> {
  const res = await ctx.req("POST", "/v1/auth/token", { body });
  if (res.status !== 200) throw new Error(`token grant failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as TokenResponse;
}

export async function createWorld(): Promise<World> {
  // Each cell that needs an endpoint makes its own: far more than a tenant's default allowance.
  const ctx = await createTestContext({ WEBHOOK_MAX_ENDPOINTS: "10000" });
  shared ??= credentialsFor("correct horse battery staple");
  const credentials = await shared;
  const member = async (tenant: string, role: Role) => {
    const user = await seedUser(ctx, tenant, role);
    return withKey(ctx, tenant, user.userId, role);
  };
  const a = {
    viewer: await member(TENANT_A, "viewer"),
    developer: await member(TENANT_A, "developer"),
    admin: await member(TENANT_A, "admin"),
  };
  const bAdmin = await member(TENANT_B, "admin");

  return {
    ctx,
    a,
    bAdmin,
    async token(m) {
      const body = await grant(ctx, { grant_type: "client_credentials", client_secret: m.apiKey });
      const claims = decodeJwt(body.access_token);
      return {
        access: body.access_token,
        refresh: body.refresh_token,
        jti: String(claims.jti),
        sid: String(claims.sid),
        auth: { authorization: `Bearer ${body.access_token}` },
      };
    },
    async refreshed(token) {
      return (await grant(ctx, { grant_type: "refresh_token", refresh_token: token.refresh })).access_token;
    },
    freshMember(role) {
      const email = `fresh-${++counter}@${TENANT_A}.test`;
      const user = ctx.deps.db.transaction((tx) =>
        ctx.deps.security.identity.createUser(tx, { tenantId: TENANT_A, email, role, credentials }),
      );
      return withKey(ctx, TENANT_A, user.id, role);
    },
    async accepts(accessToken) {
      const res = await ctx.req("GET", "/v1/auth/me", { headers: { authorization: `Bearer ${accessToken}` } });
      return res.status === 200;
    },
  };
}
