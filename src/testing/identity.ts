import type { Role } from "../../db/schema";
import { credentialsFor } from "../modules/admin/identity";
import type { TokenResponse } from "../modules/auth/service";
import { createTestContext, type TestContext } from "./app";

export interface SeededUser {
  readonly tenant: string;
  readonly userId: string;
  readonly email: string;
  readonly role: Role;
  readonly password: string;
}

export interface LoggedIn extends SeededUser {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** `{ authorization: "Bearer …" }` */
  readonly auth: Record<string, string>;
}

let counter = 0;

/** A user in `tenant` (created if new) with a known password, through the real services. */
export async function seedUser(ctx: TestContext, tenant: string, role: Role, email?: string): Promise<SeededUser> {
  const { identity } = ctx.deps.security;
  const address = email ?? `${role}-${++counter}@${tenant}.test`;
  const credentials = await credentialsFor("correct horse battery staple");
  const user = ctx.deps.db.transaction((tx) => {
    identity.ensureTenant(tx, tenant);
    return identity.createUser(tx, { tenantId: tenant, email: address, role, credentials });
  });
  return { tenant, userId: user.id, email: address, role, password: credentials.password };
}

/** Logs `user` in through POST /v1/auth/token, as a client would. */
export async function login(ctx: TestContext, user: SeededUser): Promise<LoggedIn> {
  const res = await ctx.req("POST", "/v1/auth/token", {
    body: { grant_type: "password", tenant: user.tenant, username: user.email, password: user.password },
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as TokenResponse;
  return {
    ...user,
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    auth: { authorization: `Bearer ${body.access_token}` },
  };
}

export async function seedAndLogin(ctx: TestContext, tenant: string, role: Role): Promise<LoggedIn> {
  return login(ctx, await seedUser(ctx, tenant, role));
}

/** A fresh test context (with `env`) and an admin of tenant "acme", logged in: most files' start. */
export async function contextWithAdmin(
  env: Record<string, string> = {},
): Promise<{ ctx: TestContext; admin: LoggedIn }> {
  const ctx = await createTestContext(env);
  return { ctx, admin: await seedAndLogin(ctx, "acme", "admin") };
}

/** A form-encoded body and its content type, for `ctx.req`. */
export function formRequest(fields: Record<string, string>): { body: string; headers: Record<string, string> } {
  return {
    body: new URLSearchParams(fields).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  };
}

/** POST /v1/auth/token with `body` as JSON, or as a form. */
export function tokenRequest(ctx: TestContext, body: Record<string, string>, asForm = false): Promise<Response> {
  return ctx.req("POST", "/v1/auth/token", asForm ? formRequest(body) : { body });
}
