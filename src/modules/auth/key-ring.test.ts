import { afterAll, beforeAll, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { decodeProtectedHeader } from "jose";
import { signingKeys } from "../../../db/schema";
import { createTestContext, type TestContext } from "../../testing/app";
import { seedAndLogin } from "../../testing/identity";
import { rotateKeys } from "./key-ring";

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ ACCESS_TOKEN_TTL: "15m" });
});
afterAll(() => ctx.close());

test("a key rotated out by a CLI with a shorter token lifetime keeps verifying what this process signed", async () => {
  const { keyRing, keyRingOptions } = ctx.deps.security;
  const user = await seedAndLogin(ctx, "acme", "viewer");
  const kid = decodeProtectedHeader(user.accessToken).kid as string;
  const signedAt = ctx.clock.now();
  // The CLI ran with ACCESS_TOKEN_TTL=1s: it would retire the key 31 s from now.
  await rotateKeys({ ...keyRingOptions, retireAfterMs: 31_000 });
  await keyRing.reload();
  const row = ctx.deps.db.select().from(signingKeys).where(eq(signingKeys.kid, kid)).get();
  expect(row?.status).toBe("previous");
  expect(row?.verifyUntil).toBe(signedAt + keyRingOptions.retireAfterMs);
  const me = () => ctx.req("GET", "/v1/auth/me", { headers: user.auth });
  ctx.clock.advance(10 * 60_000);
  expect((await me()).status).toBe(200);
  expect(keyRing.verificationKey(kid)).toBeDefined();
  // Past the token's own lifetime and skew, the key verifies nothing more.
  ctx.clock.advance(6 * 60_000);
  expect(keyRing.verificationKey(kid)).toBeUndefined();
});
