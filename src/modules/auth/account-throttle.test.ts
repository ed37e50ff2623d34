import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { type SeededUser, seedUser } from "../../testing/identity";

const PER_MINUTE = 3;
let ctx: TestContext;
let user: SeededUser;
beforeAll(async () => {
  ctx = await createTestContext({ RATE_LIMIT_ACCOUNT_PER_MINUTE: String(PER_MINUTE) });
  user = await seedUser(ctx, "acme", "viewer");
});
afterAll(() => ctx.close());

const login = (username: string, password: string, tenant = "acme") =>
  ctx.req("POST", "/v1/auth/token", { body: { grant_type: "password", tenant, username, password } });

test("an account's password attempts are limited together, the right password included once spent", async () => {
  for (let i = 0; i < PER_MINUTE; i++) expect((await login(user.email, "wrong password!!")).status).toBe(400);
  const spent = await login(user.email, user.password);
  expect(spent.status).toBe(429);
  expect(Number(spent.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  // The account's quota, spent: not the address's, which has plenty left.
  expect(spent.headers.get("ratelimit-policy")).toBe(`"account";q=${PER_MINUTE};w=60`);
  expect(spent.headers.get("ratelimit")).toStartWith(`"account";r=0;t=`);
  expect(spent.headers.get("x-ratelimit-remaining")).toBe("0");
  const problem = (await spent.json()) as { type: string; detail: string };
  expect(problem.type).toBe("urn:warden:problem:rate-limited");
  expect(problem.detail).toContain("this account");
  // Another account, in the same tenant, is not held back by it.
  const other = await seedUser(ctx, "acme", "viewer");
  expect((await login(other.email, other.password)).status).toBe(200);
  // The account's bucket refills: one attempt every 60 / PER_MINUTE seconds.
  ctx.clock.advance((60 / PER_MINUTE) * 1000);
  expect((await login(user.email, user.password)).status).toBe(200);
});

test("a username no one has is limited alike (refusing only real ones would tell which exist)", async () => {
  const statuses = [];
  for (let i = 0; i <= PER_MINUTE; i++) statuses.push((await login("nobody@acme.test", "whatever password")).status);
  expect(statuses).toEqual([...Array(PER_MINUTE).fill(400), 429]);
});

test("the username's case and surrounding spaces open no second bucket (the lookup ignores both)", async () => {
  for (const variants of [
    (email: string) => [email, email.toUpperCase(), `${email[0]?.toUpperCase()}${email.slice(1)}`],
    (email: string) => [email, ` ${email}`, `${email}  `],
  ]) {
    const target = await seedUser(ctx, "acme", "viewer");
    const spellings = variants(target.email);
    for (const spelling of spellings) expect((await login(spelling, "wrong password!!")).status).toBe(400);
    // Every spelling of it is now refused, the right password included.
    for (const spelling of spellings) expect((await login(spelling, target.password)).status).toBe(429);
  }
});
