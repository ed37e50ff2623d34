import type { Db } from "../../../db/client";
import type { Config } from "../../config";
import type { Clock } from "../../lib/clock";
import type { Logger } from "../../lib/logger";
import type { Metrics } from "../../plugins/metrics";
import type { Security } from "../auth/setup";
import { DeliveryService } from "./deliveries";
import { Dispatcher } from "./dispatcher";
import { EndpointService } from "./endpoints";

export interface Webhooks {
  readonly endpoints: EndpointService;
  readonly deliveries: DeliveryService;
  /** Not running until `start()`: the server starts it, tests drive it with `drain()`. */
  readonly dispatcher: Dispatcher;
}

export function openWebhooks(deps: {
  config: Config;
  db: Db;
  clock: Clock;
  security: Security;
  metrics: Metrics;
  log: Logger;
  version: string;
}): Webhooks {
  const { config, db, clock, security, metrics, log } = deps;
  const endpoints = new EndpointService(
    db,
    clock,
    security.audit,
    security.secrets.sealingKey,
    config.webhook.allowPrivate,
    config.webhook.maxEndpointsPerTenant,
  );
  const dispatcher = new Dispatcher(db.$client, {
    clock,
    batcher: security.batcher,
    endpoints,
    config: config.webhook,
    metrics,
    log,
    userAgent: `Warden-Webhooks/${deps.version}`,
  });
  const deliveries = new DeliveryService(db.$client, clock, security.audit, endpoints, () => dispatcher.wake());
  metrics.sources.webhookQueueDepth = () => deliveries.depth();
  metrics.sources.webhookOverdueSeconds = () => deliveries.overdueSeconds();
  return { endpoints, deliveries, dispatcher };
}
