import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { contextWithAdmin, type LoggedIn, seedAndLogin } from "../../testing/identity";

let ctx: TestContext;
let admin: LoggedIn;

beforeAll(async () => {
  ({ ctx, admin } = await contextWithAdmin({ WEBHOOK_ALLOW_PRIVATE: "false" }));
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

  test("the trail records the filter kept: each type once, and every type as []", async () => {
    const paramsOf = async (body: unknown) => {
      expect((await create(body)).status).toBe(201);
      return JSON.parse(ctx.auditEvents("webhook.create").at(-1)?.params ?? "{}") as { event_types?: unknown };
    };
    const twice = await paramsOf({ url: "https://93.184.215.14/", event_types: ["deploy.done", "deploy.done"] });
    expect(twice.event_types).toEqual(["deploy.done"]);
    expect((await paramsOf({ url: "https://93.184.215.14/" })).event_types).toEqual([]);
    for (const row of ctx.deps.webhooks.endpoints.list("acme", { limit: 1000 }))
      await ctx.req("DELETE", `/v1/webhooks/endpoints/${row.id}`, { headers: admin.auth });
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
      ["PATCH", ""],
    ] as const)
      expect(
        (
          await ctx.req(method, `/v1/webhooks/endpoints/${endpoint.id}${suffix}`, {
            headers: admin.auth,
            body: method === "PATCH" ? { description: "x" } : undefined,
          })
        ).status,
      ).toBe(404);
  });
});

describe("changing an endpoint", () => {
  const patch = (id: string, body: unknown) =>
    ctx.req("PATCH", `/v1/webhooks/endpoints/${id}`, { body, headers: admin.auth });
  const stored = (id: string) =>
    ctx.deps.db.$client
      .query<{ url: string; description: string; event_types: string | null; secret_sealed: string }, [string]>(
        "SELECT url, description, event_types, secret_sealed FROM webhook_endpoints WHERE id = ?",
      )
      .get(id);
  let id: string;

  beforeAll(async () => {
    const res = await create({ url: "https://93.184.215.14/a", event_types: ["alert.*"], description: "pager" });
    id = ((await res.json()) as { endpoint: { id: string } }).endpoint.id;
  });

  test("changes only the fields sent, and keeps the secret", async () => {
    const before = stored(id);
    const res = await patch(id, { url: "https://93.184.215.14/b?k=1" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      id,
      url: "https://93.184.215.14/b?k=1",
      description: "pager",
      event_types: ["alert.*"],
    });
    const after = stored(id);
    expect(after?.secret_sealed).toBe(before?.secret_sealed as string);
    const described = await patch(id, { description: "on-call" });
    expect(await described.json()).toMatchObject({ url: "https://93.184.215.14/b?k=1", description: "on-call" });
  });

  test("new event types decide which notifications it receives from the next one on", async () => {
    const developer = await seedAndLogin(ctx, "acme", "developer");
    const send = async (type: string) => {
      const res = await ctx.req("POST", "/v1/notifications", {
        body: { recipients: { user_ids: [developer.userId] }, type, title: "t" },
        headers: developer.auth,
      });
      expect(res.status).toBe(201);
      return ((await res.json()) as { deliveries: number }).deliveries;
    };
    expect(await send("deploy.done")).toBe(0);
    expect((await patch(id, { event_types: ["deploy.*"] })).status).toBe(200);
    expect(await send("deploy.done")).toBe(1);
    expect(await send("build.failed")).toBe(0);
    // An empty list means every type, as at registration.
    expect(await (await patch(id, { event_types: [] })).json()).toMatchObject({ event_types: [] });
    expect(stored(id)?.event_types).toBeNull();
    expect(await send("build.failed")).toBe(1);
  });

  test("bad changes are 422 naming the field, and change nothing", async () => {
    const before = stored(id);
    const cases: [unknown, string][] = [
      [{}, ""],
      [{ url: "ftp://hooks.example.com/" }, "url"],
      [{ url: "https://user:pw@hooks.example.com/" }, "url"],
      [{ url: "http://127.0.0.1:8080/hook", description: "moved" }, "url"],
      [{ description: "x".repeat(501) }, "description"],
      [{ event_types: ["has space"] }, "event_types.0"],
      [{ event_types: "alert.fired" }, "event_types"],
    ];
    // One entry for the body as a whole, not the same message once per field it could have sent.
    const empty = await (await patch(id, {})).json();
    expect(empty.errors).toEqual([
      { in: "body", field: "", message: "Send at least one of url, description, event_types" },
    ]);
    for (const [body, field] of cases) {
      const res = await patch(id, body);
      expect(res.status).toBe(422);
      const problem = (await res.json()) as { errors: { field: string }[] };
      expect(problem.errors.map((e) => e.field)).toContain(field);
    }
    expect(stored(id)).toEqual(before);
  });

  test("who may not change it hears 401 or 403 before anything about the body", async () => {
    const developer = await seedAndLogin(ctx, "acme", "developer");
    const bad = { url: 5 };
    const anonymous = await ctx.req("PATCH", `/v1/webhooks/endpoints/${id}`, { body: bad });
    expect(anonymous.status).toBe(401);
    const denied = await ctx.req("PATCH", `/v1/webhooks/endpoints/${id}`, { body: bad, headers: developer.auth });
    expect(denied.status).toBe(403);
    expect(await denied.text()).not.toContain("url");
    const audit = await ctx.req("GET", "/v1/audit?limit=0");
    expect(audit.status).toBe(401);
  });

  test("a URL's path and query, which may hold the receiver's token, are shown to admins only, and never kept in the trail", async () => {
    const developer = await seedAndLogin(ctx, "acme", "developer");
    for (const url of ["https://93.184.215.14/in?token=s3cr3t", "https://93.184.215.14/services/T000/B000/s3cr3t"]) {
      const res = await create({ url });
      const { endpoint } = (await res.json()) as { endpoint: { id: string; url: string } };
      expect(endpoint.url).toBe(url);
      for (const path of [`/v1/webhooks/endpoints/${endpoint.id}`, "/v1/webhooks/endpoints"]) {
        const asDeveloper = await (await ctx.req("GET", path, { headers: developer.auth })).text();
        expect(asDeveloper).not.toContain("s3cr3t");
        expect(asDeveloper).toContain("https://93.184.215.14/…");
        expect(await (await ctx.req("GET", path, { headers: admin.auth })).text()).toContain(url);
      }
      const trail = JSON.stringify(ctx.auditEvents("webhook.create").at(-1));
      expect(trail).not.toContain("s3cr3t");
      expect(trail).toContain(
        `https://93.184.215.14/… (sha256 ${new Bun.CryptoHasher("sha256").update(url).digest("hex").slice(0, 16)})`,
      );
    }
  });

  test("another tenant's endpoint, or none, is a 404", async () => {
    const outsider = await seedAndLogin(ctx, "globex", "admin");
    const res = await ctx.req("PATCH", `/v1/webhooks/endpoints/${id}`, {
      body: { description: "taken over" },
      headers: outsider.auth,
    });
    expect(res.status).toBe(404);
    expect(stored(id)?.description).not.toBe("taken over");
    expect((await patch("01J00000000000000000000000", { description: "x" })).status).toBe(404);
  });
});

describe("listing endpoints", () => {
  test("pages newest first by cursor; a cursor it did not hand out is a 422", async () => {
    const lister = await seedAndLogin(ctx, "paging", "admin");
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await ctx.req("POST", "/v1/webhooks/endpoints", {
        body: { url: `https://93.184.215.14/hook-${i}` },
        headers: lister.auth,
      });
      made.push(((await res.json()) as { endpoint: { id: string } }).endpoint.id);
    }
    const seen: string[] = [];
    let cursor: string | null = "";
    for (let pages = 0; cursor !== null; pages++) {
      expect(pages).toBeLessThan(5);
      const res = await ctx.req("GET", `/v1/webhooks/endpoints?limit=2${cursor ? `&cursor=${cursor}` : ""}`, {
        headers: lister.auth,
      });
      const page = (await res.json()) as { endpoints: { id: string }[]; next_cursor: string | null };
      expect(page.endpoints.length).toBeLessThanOrEqual(2);
      seen.push(...page.endpoints.map((e) => e.id));
      cursor = page.next_cursor;
    }
    expect(seen).toEqual([...made].reverse());
    for (const query of ["?cursor=nope", "?limit=0", "?limit=201"]) {
      const res = await ctx.req("GET", `/v1/webhooks/endpoints${query}`, { headers: lister.auth });
      expect(res.status).toBe(422);
    }
  });
});

describe("endpoints per tenant", () => {
  test("past WEBHOOK_MAX_ENDPOINTS a create is a 409; a deletion makes room; other tenants are not counted", async () => {
    const limited = await createTestContext({ WEBHOOK_MAX_ENDPOINTS: "2" });
    try {
      const acme = await seedAndLogin(limited, "acme", "admin");
      const globex = await seedAndLogin(limited, "globex", "admin");
      const add = (who: LoggedIn) =>
        limited.req("POST", "/v1/webhooks/endpoints", {
          body: { url: "https://93.184.215.14/hook" },
          headers: who.auth,
        });
      const first = (await (await add(acme)).json()) as { endpoint: { id: string } };
      expect((await add(acme)).status).toBe(201);
      const refused = await add(acme);
      expect(refused.status).toBe(409);
      expect(await refused.json()).toMatchObject({ type: "urn:warden:problem:too-many-endpoints" });
      expect(limited.auditEvents("webhook.create")).toHaveLength(2);
      expect((await add(globex)).status).toBe(201);
      const deleted = await limited.req("DELETE", `/v1/webhooks/endpoints/${first.endpoint.id}`, {
        headers: acme.auth,
      });
      expect(deleted.status).toBe(204);
      expect((await add(acme)).status).toBe(201);
    } finally {
      await limited.close();
    }
  });
});
