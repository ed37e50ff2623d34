import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";

let ctx: TestContext;
let admin: LoggedIn;

beforeAll(async () => {
  ctx = await createTestContext({ WEBHOOK_ALLOW_PRIVATE: "false" });
  admin = await seedAndLogin(ctx, "acme", "admin");
});
afterAll(() => ctx.close());

const create = (body: unknown) => ctx.req("POST", "/v1/webhooks/endpoints", { body, headers: admin.auth });

describe("webhook endpoints", () => {
  test("bad URLs and filters are 422 naming the field; nothing is stored", async () => {
    const cases: [unknown, string][] = [
      [{ url: "ftp://hooks.example.com/" }, "url"],
      [{ url: "https://user:pw@hooks.example.com/" }, "url"],
      [{ url: "not a url" }, "url"],
      [{ url: "http://127.0.0.1:8080/hook" }, "url"],
      [{ url: "http://localhost/hook" }, "url"],
      [{ url: "http://[::1]/hook" }, "url"],
      [{ url: "http://169.254.169.254/latest/meta-data" }, "url"],
      [{}, "url"],
      [{ url: "https://93.184.215.14/", event_types: ["has space"] }, "event_types.0"],
      [{ url: "https://93.184.215.14/", event_types: "alert.fired" }, "event_types"],
    ];
    for (const [body, field] of cases) {
      const res = await create(body);
      expect(res.status).toBe(422);
      const problem = (await res.json()) as { errors: { field: string }[] };
      expect(problem.errors.map((e) => e.field)).toContain(field);
    }
    const list = await ctx.req("GET", "/v1/webhooks/endpoints", { headers: admin.auth });
    expect(((await list.json()) as { endpoints: unknown[] }).endpoints).toHaveLength(0);
  });

  test("the secret is shown once, stored sealed, and never listed", async () => {
    const res = await create({ url: "https://93.184.215.14/hooks", event_types: ["alert.*"], description: "pager" });
    expect(res.status).toBe(201);
    const { endpoint, secret } = (await res.json()) as { endpoint: { id: string }; secret: string };
    expect(secret).toMatch(/^whsec_/);
    const stored = ctx.deps.db.$client
      .query<{ secret_sealed: string }, [string]>("SELECT secret_sealed FROM webhook_endpoints WHERE id = ?")
      .get(endpoint.id);
    expect(stored?.secret_sealed).toStartWith("v1.");
    expect(stored?.secret_sealed).not.toContain(secret.slice(6));
    const listed = await (await ctx.req("GET", "/v1/webhooks/endpoints", { headers: admin.auth })).text();
    const one = await (await ctx.req("GET", `/v1/webhooks/endpoints/${endpoint.id}`, { headers: admin.auth })).text();
    for (const text of [listed, one]) {
      expect(text).toContain(endpoint.id);
      expect(text).not.toContain(secret.slice(6));
      expect(text).not.toContain("sealed");
    }
    expect(JSON.parse(one)).toMatchObject({ event_types: ["alert.*"], description: "pager", disabled_at: null });
  });

  test("a deleted endpoint is gone for every route", async () => {
    const res = await create({ url: "https://93.184.215.14/old" });
    const { endpoint } = (await res.json()) as { endpoint: { id: string } };
    expect((await ctx.req("DELETE", `/v1/webhooks/endpoints/${endpoint.id}`, { headers: admin.auth })).status).toBe(
      204,
    );
    for (const [method, suffix] of [
      ["GET", ""],
      ["DELETE", ""],
      ["POST", "/rotate-secret"],
      ["POST", "/enable"],
    ] as const)
      expect(
        (await ctx.req(method, `/v1/webhooks/endpoints/${endpoint.id}${suffix}`, { headers: admin.auth })).status,
      ).toBe(404);
  });
});
