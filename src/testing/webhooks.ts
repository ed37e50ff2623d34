import { afterAll, afterEach, beforeAll } from "bun:test";
import { createTestContext, type TestContext } from "./app";
import { type LoggedIn, login, seedAndLogin } from "./identity";
import { type Receiver, startReceiver } from "./receiver";

export interface WebhookWorld {
  ctx: TestContext;
  admin: LoggedIn;
  dev: LoggedIn;
  viewer: LoggedIn;
  outsider: LoggedIn;
  createEndpoint(url: string, extra?: Record<string, unknown>): Promise<{ id: string; secret: string }>;
  notify(type?: string, data?: Record<string, unknown>): Promise<{ id: string; deliveries: number }>;
  delivery(id: string): Promise<{ delivery: Record<string, unknown>; attempts: Record<string, unknown>[] }>;
  /** Moves the test clock and logs everyone in again (access tokens expire after 15 minutes). */
  advance(ms: number): Promise<void>;
}

/** A tenant with an admin, a developer and a viewer, another tenant's admin, and helpers over HTTP. */
export async function webhookWorld(env: Record<string, string> = {}): Promise<WebhookWorld> {
  const ctx = await createTestContext({ WEBHOOK_RETRY_SCHEDULE: "0,1,1,1", WEBHOOK_TIMEOUT_MS: "400", ...env });
  // Receivers check webhook-timestamp against their own clock; start the test clock at real time.
  ctx.clock.advance(Date.now() - ctx.clock.now());
  const admin = await seedAndLogin(ctx, "acme", "admin");
  const dev = await seedAndLogin(ctx, "acme", "developer");
  const viewer = await seedAndLogin(ctx, "acme", "viewer");
  const outsider = await seedAndLogin(ctx, "globex", "admin");
  const world: WebhookWorld = {
    ctx,
    admin,
    dev,
    viewer,
    outsider,
    async advance(ms) {
      ctx.clock.advance(ms);
      if (ms < 10 * 60_000) return;
      world.admin = await login(ctx, world.admin);
      world.dev = await login(ctx, world.dev);
      world.viewer = await login(ctx, world.viewer);
      world.outsider = await login(ctx, world.outsider);
    },
    async createEndpoint(url, extra = {}) {
      const res = await ctx.req("POST", "/v1/webhooks/endpoints", {
        body: { url, ...extra },
        headers: world.admin.auth,
      });
      if (res.status !== 201) throw new Error(`endpoint: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { endpoint: { id: string }; secret: string };
      return { id: body.endpoint.id, secret: body.secret };
    },
    async notify(type = "alert.fired", data = {}) {
      const res = await ctx.req("POST", "/v1/notifications", {
        body: { recipients: { user_ids: [world.viewer.userId] }, type, title: "t", data },
        headers: world.dev.auth,
      });
      if (res.status !== 201) throw new Error(`notify: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { notification: { id: string }; deliveries: number };
      return { id: body.notification.id, deliveries: body.deliveries };
    },
    async delivery(id) {
      const res = await ctx.req("GET", `/v1/webhooks/deliveries/${id}`, { headers: world.admin.auth });
      if (res.status !== 200) throw new Error(`delivery: ${res.status} ${await res.text()}`);
      return (await res.json()) as { delivery: Record<string, unknown>; attempts: Record<string, unknown>[] };
    },
  };
  return world;
}

/** The one delivery of a notification, by its notification id. */
export function deliveryOf(world: WebhookWorld, notificationId: string): string {
  const row = world.ctx.deps.db.$client
    .query<{ id: string }, [string]>("SELECT id FROM webhook_deliveries WHERE notification_id = ?")
    .get(notificationId);
  if (!row) throw new Error("no delivery");
  return row.id;
}

/**
 * A fresh endpoint for `receiver` (the tenant's others deleted, what the receiver got forgotten,
 * its answer back to 204), so a test sees only its own deliveries.
 */
export async function freshEndpoint(
  world: WebhookWorld,
  receiver: Receiver,
  extra: Record<string, unknown> = {},
  url = receiver.url,
): Promise<{ id: string; secret: string }> {
  for (const row of world.ctx.deps.webhooks.endpoints.list("acme", { limit: 1000 }))
    await world.ctx.req("DELETE", `/v1/webhooks/endpoints/${row.id}`, { headers: world.admin.auth });
  receiver.received.length = 0;
  receiver.respond = () => new Response(null, { status: 204 });
  return world.createEndpoint(url, extra);
}

/** A webhook world and a receiver on loopback, and how to close both. */
export async function webhookWorldWithReceiver(): Promise<{
  world: WebhookWorld;
  receiver: Receiver;
  close(): Promise<void>;
}> {
  const world = await webhookWorld();
  const receiver = startReceiver();
  return {
    world,
    receiver,
    async close() {
      await receiver.close();
      await world.ctx.close();
    },
  };
}

/** What a test file over one webhook world and its receiver works with (see `useWebhookWorld`). */
export interface WebhookFixture {
  readonly world: WebhookWorld;
  readonly receiver: Receiver;
  /** Runs the dispatcher until nothing is due. */
  drain(): Promise<void>;
  advance(ms: number): Promise<void>;
  /** A fresh endpoint for the receiver (see `freshEndpoint`). */
  freshEndpoint(extra?: Record<string, unknown>, url?: string): Promise<{ id: string; secret: string }>;
}

/**
 * For a test file: a webhook world and its receiver, opened before the file's tests and closed
 * after them; the receiver answers 204 again after each test.
 */
export function useWebhookWorld(): WebhookFixture {
  let opened: Awaited<ReturnType<typeof webhookWorldWithReceiver>> | undefined;
  const get = () => {
    if (!opened) throw new Error("the webhook world is only there while the file's tests run");
    return opened;
  };
  beforeAll(async () => {
    opened = await webhookWorldWithReceiver();
  });
  afterAll(() => opened?.close());
  afterEach(() => {
    if (opened) opened.receiver.respond = () => new Response(null, { status: 204 });
  });
  return {
    get world() {
      return get().world;
    },
    get receiver() {
      return get().receiver;
    },
    drain: () => get().world.ctx.deps.webhooks.dispatcher.drain(),
    advance: (ms) => get().world.advance(ms),
    freshEndpoint: (extra = {}, url) => freshEndpoint(get().world, get().receiver, extra, url ?? get().receiver.url),
  };
}
