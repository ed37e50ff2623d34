import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Receiver, startReceiver } from "../../testing/receiver";
import { type WebhookWorld, webhookWorld } from "../../testing/webhooks";
import { Dispatcher } from "./dispatcher";

let world: WebhookWorld;
let receiver: Receiver;

beforeAll(async () => {
  world = await webhookWorld();
  receiver = startReceiver();
});
afterAll(async () => {
  await receiver.close();
  await world.ctx.close();
});

test("a plain-HTTP delivery goes to the address its name was resolved and checked to, with the name as Host", async () => {
  const port = new URL(receiver.url).port;
  // A name only this resolver knows: fetch resolving it again by itself would fail.
  await world.createEndpoint(`http://receiver.invalid:${port}/hooks`);
  const asked: string[] = [];
  const { deps } = world.ctx;
  const dispatcher = new Dispatcher(deps.db.$client, {
    clock: world.ctx.clock,
    batcher: deps.security.batcher,
    endpoints: deps.webhooks.endpoints,
    config: deps.config.webhook,
    metrics: deps.metrics,
    log: deps.log,
    userAgent: "pinning-test",
    resolve: async (host) => {
      asked.push(host);
      return host === "receiver.invalid" ? ["127.0.0.1"] : [];
    },
  });
  await world.notify("alert.fired");
  await dispatcher.drain();
  expect(asked).toEqual(["receiver.invalid"]);
  expect(receiver.received).toHaveLength(1);
  expect(receiver.received[0]?.headers.host).toBe(`receiver.invalid:${port}`);
});
