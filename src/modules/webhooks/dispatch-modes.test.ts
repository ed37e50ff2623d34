import { afterAll, beforeAll, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { createAdminWithCli, passwordLogin } from "../../testing/cli";
import { waitFor } from "../../testing/ports";
import { type Receiver, startReceiver } from "../../testing/receiver";
import { startServer, type TestServer } from "../../testing/server";
import { type WebhookWorld, webhookWorld } from "../../testing/webhooks";

let receiver: Receiver;
const servers: TestServer[] = [];

beforeAll(() => {
  receiver = startReceiver();
});
afterAll(async () => {
  for (const server of servers) await server.stop();
  await receiver.close();
});

test("an HTTP-only process (WEBHOOK_DISPATCH=false) queues; a delivering one on the same data sends", async () => {
  const env = { RATE_LIMIT_ENABLED: "false", WEBHOOK_DISPATCH: "false" };
  const httpOnly = await startServer({ env });
  servers.push(httpOnly);
  const admin = await createAdminWithCli(httpOnly.dataDir, { tenant: "acme", email: "ops@acme.test" });
  const json = { authorization: `Bearer ${await passwordLogin(httpOnly, admin)}`, "content-type": "application/json" };
  const endpoint = await httpOnly.fetch("/v1/webhooks/endpoints", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ url: receiver.url }),
  });
  const { secret } = (await endpoint.json()) as { secret: string };
  const sent = await httpOnly.fetch("/v1/notifications", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ recipients: { user_ids: [admin.user_id] }, type: "split.test", title: "queued" }),
  });
  expect(sent.status).toBe(201);
  await Bun.sleep(800);
  expect(receiver.received).toHaveLength(0);
  const queued = await httpOnly.fetch("/v1/webhooks/stats", { headers: json });
  expect(((await queued.json()) as { queue: { pending: number } }).queue.pending).toBe(1);
  // What WebhookDispatchStalled watches: how long the due delivery has waited.
  const overdue = async () =>
    Number(/^webhook_overdue_seconds (\S+)$/m.exec(await (await httpOnly.fetch("/metrics")).text())?.[1]);
  expect(await overdue()).toBeGreaterThanOrEqual(0.8);
  expect(await overdue()).toBeLessThan(30);

  const dispatcher = await startServer({ dataDir: httpOnly.dataDir, env: { RATE_LIMIT_ENABLED: "false" } });
  servers.push(dispatcher);
  await waitFor(() => receiver.received.length === 1, 5000, "the delivering process to send it");
  const got = receiver.received[0];
  expect(() => new Webhook(secret).verify(got?.body ?? "", got?.headers ?? {})).not.toThrow();
  await waitFor(async () => (await overdue()) === 0, 5000, "nothing to be due once it is delivered");
});

let world: WebhookWorld;
test("while the server is busy, delivery keeps to an eighth of its slots", async () => {
  world = await webhookWorld({ WEBHOOK_CONCURRENCY: "16" });
  try {
    let inFlight = 0;
    let most = 0;
    receiver.received.length = 0;
    receiver.respond = async () => {
      most = Math.max(most, ++inFlight);
      await Bun.sleep(30);
      inFlight--;
      return new Response(null, { status: 204 });
    };
    await world.createEndpoint(receiver.url);
    for (let i = 0; i < 12; i++) await world.notify();
    const { dispatcher } = world.ctx.deps.webhooks;
    dispatcher.start(() => true);
    await waitFor(() => receiver.received.length >= 12, 10_000, "all twelve deliveries");
    await dispatcher.stop();
    expect(most).toBeLessThanOrEqual(2);
    expect(most).toBeGreaterThanOrEqual(1);
  } finally {
    await world.ctx.close();
  }
});
