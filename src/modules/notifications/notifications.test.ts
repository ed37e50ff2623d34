import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { type LoggedIn, seedAndLogin } from "../../testing/identity";

let ctx: TestContext;
let dev: LoggedIn;
let alice: LoggedIn;
let bob: LoggedIn;
let other: LoggedIn;

beforeAll(async () => {
  ctx = await createTestContext({ NOTIFICATION_DATA_MAX_BYTES: "256" });
  dev = await seedAndLogin(ctx, "acme", "developer");
  alice = await seedAndLogin(ctx, "acme", "viewer");
  bob = await seedAndLogin(ctx, "acme", "viewer");
  other = await seedAndLogin(ctx, "globex", "admin");
});
afterAll(() => ctx.close());

const send = (who: LoggedIn, body: unknown, headers: Record<string, string> = {}) =>
  ctx.req("POST", "/v1/notifications", { body, headers: { ...who.auth, ...headers } });

const inbox = async (who: LoggedIn, query = "") => {
  const res = await ctx.req("GET", `/v1/notifications${query}`, { headers: who.auth });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    notifications: { id: string; title: string; read_at: string | null }[];
    next_cursor: string | null;
  };
};

const unread = async (who: LoggedIn) =>
  ((await (await ctx.req("GET", "/v1/notifications/unread-count", { headers: who.auth })).json()) as { unread: number })
    .unread;

describe("creating notifications", () => {
  test("writes the notification and one inbox row per recipient in one go", async () => {
    const res = await send(dev, {
      recipients: { user_ids: [alice.userId, bob.userId, alice.userId] },
      type: "alert.fired",
      title: "Disk almost full",
      body: "db-1 at 91 %",
      data: { host: "db-1", pct: 91 },
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as {
      notification: { id: string; data: unknown };
      recipients: number;
      deliveries: number;
    };
    expect(created.recipients).toBe(2);
    expect(created.deliveries).toBe(0);
    expect(created.notification.data).toEqual({ host: "db-1", pct: 91 });
    for (const who of [alice, bob]) expect((await inbox(who)).notifications[0]?.id).toBe(created.notification.id);
    expect((await inbox(dev)).notifications).toHaveLength(0);
  });

  test("a role names every active user holding it in the tenant, and nobody elsewhere", async () => {
    const res = await send(dev, { recipients: { role: "viewer" }, type: "digest", title: "Weekly digest" });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { recipients: number }).recipients).toBe(2);
    expect((await inbox(other)).notifications).toHaveLength(0);
  });

  test("a user disabled, enabled or created just now is counted at once, by role and by id", async () => {
    const admin = await seedAndLogin(ctx, "roles", "admin");
    const carol = await seedAndLogin(ctx, "roles", "viewer");
    /** How many the role reaches, or the status when it reaches nobody. */
    const byRole = async () => {
      const res = await send(admin, { recipients: { role: "viewer" }, type: "digest", title: "t" });
      return res.status === 201 ? ((await res.json()) as { recipients: number }).recipients : res.status;
    };
    const byId = async () =>
      (await send(admin, { recipients: { user_ids: [carol.userId] }, type: "x", title: "t" })).status;
    // Both reads are cached now; no clock moves below, so only the change itself can refresh them.
    expect(await byRole()).toBe(1);
    expect(await byId()).toBe(201);
    const admin_ = (path: string) => ctx.req("POST", path, { headers: admin.auth });
    expect((await admin_(`/v1/admin/users/${carol.userId}/disable`)).status).toBe(200);
    expect(await byRole()).toBe(422);
    expect(await byId()).toBe(422);
    expect((await admin_(`/v1/admin/users/${carol.userId}/enable`)).status).toBe(200);
    expect(await byRole()).toBe(1);
    expect(await byId()).toBe(201);
    await seedAndLogin(ctx, "roles", "viewer");
    expect(await byRole()).toBe(2);
  });

  test("viewers may not send; another tenant's users are unknown recipients", async () => {
    expect((await send(alice, { recipients: { role: "viewer" }, type: "x", title: "t" })).status).toBe(403);
    const res = await send(dev, { recipients: { user_ids: [other.userId] }, type: "x", title: "t" });
    expect(res.status).toBe(422);
    const problem = (await res.json()) as { errors: { field: string }[] };
    expect(problem.errors[0]?.field).toBe("recipients.user_ids");
    expect((await inbox(other)).notifications).toHaveLength(0);
    const mixed = await send(dev, { recipients: { user_ids: [alice.userId, other.userId] }, type: "x", title: "t" });
    expect(mixed.status).toBe(422);
    const named = (await mixed.json()) as { errors: { field: string; message: string }[] };
    expect(named.errors[0]?.field).toBe("recipients.user_ids");
    expect(named.errors[0]?.message).toContain(other.userId);
    expect(named.errors[0]?.message).not.toContain(alice.userId);
    expect((await inbox(alice)).notifications.some((n) => n.title === "t")).toBe(false);
  });

  test("user ids and a role together name each user once", async () => {
    const res = await send(dev, {
      recipients: { user_ids: [dev.userId, alice.userId], role: "viewer" },
      type: "both",
      title: "Both ways",
    });
    expect(res.status).toBe(201);
    // dev by id; alice by id and by role; bob by role.
    expect(((await res.json()) as { recipients: number }).recipients).toBe(3);
    for (const who of [dev, alice, bob]) {
      const titles = (await inbox(who)).notifications.filter((n) => n.title === "Both ways");
      expect(titles).toHaveLength(1);
    }
  });

  test("bad input is a 4xx naming the field, and stores nothing", async () => {
    const before = ctx.deps.db.$client.query<{ n: number }, []>("SELECT count(*) AS n FROM notifications").get()?.n;
    const cases: [unknown, number, string][] = [
      [{ recipients: {}, type: "x", title: "t" }, 422, "recipients"],
      [{ recipients: { role: "owner" }, type: "x", title: "t" }, 422, "recipients.role"],
      [{ recipients: { role: "viewer" }, type: "has space", title: "t" }, 422, "type"],
      [{ recipients: { role: "viewer" }, type: "x", title: "" }, 422, "title"],
      [{ recipients: { role: "viewer" }, type: "x" }, 422, "title"],
      [{ recipients: { role: "viewer" }, type: "x", title: "t", data: [1, 2] }, 422, "data"],
      [{ recipients: { role: "viewer" }, type: "x", title: "t", data: { blob: "x".repeat(300) } }, 413, "data"],
    ];
    for (const [body, status, field] of cases) {
      const res = await send(dev, body);
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      const problem = (await res.json()) as { errors?: { field: string }[] };
      expect(problem.errors?.map((e) => e.field)).toContain(field);
    }
    const malformed = await ctx.req("POST", "/v1/notifications", { body: "{not json", headers: dev.auth });
    expect(malformed.status).toBe(400);
    // A form cannot carry `recipients`: the route takes JSON alone, and says so.
    const form = await ctx.req("POST", "/v1/notifications", {
      body: "type=x&title=t&recipients=viewer",
      headers: { ...dev.auth, "content-type": "application/x-www-form-urlencoded" },
    });
    expect(form.status).toBe(415);
    expect(form.headers.get("accept-post")).toBe("application/json");
    expect(((await form.json()) as { detail: string }).detail).toContain("send application/json");
    const after = ctx.deps.db.$client.query<{ n: number }, []>("SELECT count(*) AS n FROM notifications").get()?.n;
    expect(after).toBe(before);
  });
});

describe("Idempotency-Key", () => {
  const body = { type: "deploy.done", title: "Deployed" };

  test("the same key and body answer the first result; nothing is written twice", async () => {
    const request = { ...body, recipients: { user_ids: [alice.userId] } };
    const first = await send(dev, request, { "idempotency-key": "deploy-42" });
    const again = await send(dev, request, { "idempotency-key": "deploy-42" });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const [a, b] = [
      (await first.json()) as { notification: { id: string } },
      (await again.json()) as { notification: { id: string } },
    ];
    expect(b.notification.id).toBe(a.notification.id);
    const copies = (await inbox(alice)).notifications.filter((n) => n.id === a.notification.id);
    expect(copies).toHaveLength(1);
  });

  test("the same key with a different body is 422; concurrent duplicates create one notification", async () => {
    const request = { ...body, recipients: { user_ids: [alice.userId] } };
    await send(dev, request, { "idempotency-key": "k-1" });
    const changed = await send(dev, { ...request, title: "Other" }, { "idempotency-key": "k-1" });
    expect(changed.status).toBe(422);
    expect(((await changed.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe("idempotency-key");

    const racing = await Promise.all(
      Array.from({ length: 5 }, () => send(dev, { ...request, title: "Race" }, { "idempotency-key": "k-race" })),
    );
    const ids = new Set<string>();
    for (const res of racing) {
      expect(res.status).toBe(201);
      ids.add(((await res.json()) as { notification: { id: string } }).notification.id);
    }
    expect(ids.size).toBe(1);
  });

  test("keys are scoped to the caller: another developer's key of the same name is a new request", async () => {
    const dev2 = await seedAndLogin(ctx, "acme", "developer");
    const request = { ...body, recipients: { user_ids: [alice.userId] }, title: "Scoped" };
    const a = (await (await send(dev, request, { "idempotency-key": "shared" })).json()) as {
      notification: { id: string };
    };
    const b = (await (await send(dev2, request, { "idempotency-key": "shared" })).json()) as {
      notification: { id: string };
    };
    expect(b.notification.id).not.toBe(a.notification.id);
  });
});

describe("inbox", () => {
  test("unread filter, unread count, mark one and mark all read", async () => {
    const carol = await seedAndLogin(ctx, "acme", "viewer");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await send(dev, { recipients: { user_ids: [carol.userId] }, type: "n", title: `n${i}` });
      ids.push(((await res.json()) as { notification: { id: string } }).notification.id);
    }
    expect(await unread(carol)).toBe(3);
    const read = await ctx.req("POST", `/v1/notifications/${ids[1]}/read`, { headers: carol.auth });
    expect(read.status).toBe(200);
    expect(((await read.json()) as { read_at: string | null }).read_at).not.toBeNull();
    expect(await unread(carol)).toBe(2);
    expect((await inbox(carol, "?unread=true")).notifications.map((n) => n.id)).toEqual([ids[2] ?? "", ids[0] ?? ""]);
    expect((await inbox(carol, "?unread=false")).notifications.map((n) => n.id)).toEqual([ids[1] ?? ""]);
    expect((await inbox(carol, "")).notifications).toHaveLength(3);
    const all = await ctx.req("POST", "/v1/notifications/read-all", { headers: carol.auth });
    expect(((await all.json()) as { updated: number }).updated).toBe(2);
    expect(await unread(carol)).toBe(0);
    expect((await inbox(carol, "?unread=true")).notifications).toHaveLength(0);
  });

  test("the unread count is exact up to 99, then 99 and capped; read-all brings it back to 0", async () => {
    const erin = await seedAndLogin(ctx, "acme", "viewer");
    const count = async () =>
      (await (await ctx.req("GET", "/v1/notifications/unread-count", { headers: erin.auth })).json()) as {
        unread: number;
        capped: boolean;
      };
    const sendMany = async (n: number) => {
      for (let at = 0; at < n; at += 100) {
        const batch = Array.from({ length: Math.min(100, n - at) }, (_, i) =>
          send(dev, { recipients: { user_ids: [erin.userId] }, type: "n", title: `c${at + i}` }),
        );
        for (const res of await Promise.all(batch)) expect(res.status).toBe(201);
      }
    };
    await sendMany(98);
    expect(await count()).toEqual({ unread: 98, capped: false });
    await sendMany(1);
    expect(await count()).toEqual({ unread: 99, capped: false });
    await sendMany(1);
    expect(await count()).toEqual({ unread: 99, capped: true });
    await sendMany(500);
    expect(await count()).toEqual({ unread: 99, capped: true });
    // Another user of the same tenant is counted apart.
    expect(await unread(alice)).toBeLessThan(99);
    const all = await ctx.req("POST", "/v1/notifications/read-all", { headers: erin.auth });
    expect(((await all.json()) as { updated: number }).updated).toBe(600);
    expect(await count()).toEqual({ unread: 0, capped: false });
  }, 30_000);

  test("the cursor walks the inbox newest first without gaps or repeats", async () => {
    const dave = await seedAndLogin(ctx, "acme", "viewer");
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await send(dev, { recipients: { user_ids: [dave.userId] }, type: "n", title: `p${i}` });
      sent.push(((await res.json()) as { notification: { id: string } }).notification.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await inbox(dave, `?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      seen.push(...page.notifications.map((n) => n.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(sent.reverse());
  });

  test("nobody can read or mark another user's notification", async () => {
    const res = await send(dev, { recipients: { user_ids: [alice.userId] }, type: "n", title: "private" });
    const id = ((await res.json()) as { notification: { id: string } }).notification.id;
    expect((await ctx.req("POST", `/v1/notifications/${id}/read`, { headers: bob.auth })).status).toBe(404);
    expect((await ctx.req("POST", `/v1/notifications/${id}/read`, { headers: other.auth })).status).toBe(404);
    expect((await inbox(alice, "?unread=true")).notifications.some((n) => n.id === id)).toBe(true);
    expect((await ctx.req("GET", "/v1/notifications?limit=0", { headers: bob.auth })).status).toBe(422);
  });

  test("empty query parameters count as not given; a cursor that is no ULID and a huge limit are 422s naming them", async () => {
    const blank = await inbox(alice, "?unread=true&cursor=&limit=");
    expect(blank.notifications.length).toBeGreaterThan(0);
    expect(blank.notifications).toEqual((await inbox(alice, "?unread=true")).notifications);
    for (const garbage of ["zzzz", "%25%25%25", "01ARZ3NDEKTSV4RRFFQ69G5FAVX"]) {
      const bad = await ctx.req("GET", `/v1/notifications?cursor=${garbage}`, { headers: alice.auth });
      expect(bad.status).toBe(422);
      expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe("cursor");
    }
    // Too large to print back as sent, or blank rather than empty (coerced to 0): named all the same.
    for (const limit of ["99999999999999999999", "%20"]) {
      const bad = await ctx.req("GET", `/v1/notifications?limit=${limit}`, { headers: alice.auth });
      expect(bad.status).toBe(422);
      expect(((await bad.json()) as { errors: { in: string; field: string }[] }).errors[0]).toMatchObject({
        in: "query",
        field: "limit",
      });
    }
  });
});

describe("webhook payload", () => {
  test("carries data exactly, $ sequences included", async () => {
    const { webhookPayload } = await import("./service");
    const data = { note: "$& $' $` $1", nested: { list: [1, "two"] } };
    const payload = JSON.parse(
      webhookPayload({
        id: "n1",
        tenant_id: "acme",
        type: "alert.fired",
        title: 'a "data":null title',
        body: "b",
        data: JSON.stringify(data),
        created_by: "u",
        created_at: 0,
        idempotency_key: null,
        request_hash: null,
      }),
    );
    expect(payload.data.data).toEqual(data);
    expect(payload.data.title).toBe('a "data":null title');
    expect(payload.timestamp).toBe("1970-01-01T00:00:00.000Z");
  });

  test("is byte for byte the JSON of the documented envelope, whatever the strings hold", async () => {
    const { webhookPayload } = await import("./service");
    const strings = ['q"uote\\back', "ctl\u0000\n\t\u001f", "ünï 🚀 \u2028", "lone \ud800 half", '"data":null', ""];
    for (const [i, text] of strings.entries()) {
      const row = {
        id: `01M80PCN81872GNDQ85XJ4JSE${i}`,
        tenant_id: `t-${text}`,
        type: "alert.fired",
        title: text,
        body: text.repeat(2),
        data: JSON.stringify({ text, n: i }),
        created_by: "u",
        created_at: Date.UTC(2026, 0, 1) + i * 1001,
        idempotency_key: null,
        request_hash: null,
      };
      const at = new Date(row.created_at).toISOString();
      expect(webhookPayload(row)).toBe(
        JSON.stringify({
          type: row.type,
          timestamp: at,
          data: {
            id: row.id,
            tenant_id: row.tenant_id,
            type: row.type,
            title: row.title,
            body: row.body,
            data: { text, n: i },
            created_at: at,
          },
        }),
      );
    }
  });
});
