/**
 * The webhook side of the bench: a receiver in this process (so receipt times share the sender's
 * clock), the endpoint that points at it, the drain rate of the backlog the notification-create
 * row leaves behind, and create → receipt latency one notification at a time.
 */
import { BenchError, LOOPBACK } from "./host.ts";

/** The drain is measured for at most this long; what is left is then dropped with the endpoint. */
const DRAIN_WINDOW_MS = 45_000;
const LATENCY_SAMPLES = 200;
const LATENCY_GAP_MS = 10;
const LATENCY_TIMEOUT_MS = 10_000;

export interface BenchReceiver {
  readonly url: string;
  count: number;
  /** performance.now() of the latest request. */
  lastAt: number;
  /** webhook-id → when it first arrived (performance.now()). */
  readonly arrivals: Map<string, number>;
  stop(): void;
}

export function startBenchReceiver(): BenchReceiver {
  const receiver = {
    url: "",
    count: 0,
    lastAt: 0,
    arrivals: new Map<string, number>(),
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    hostname: LOOPBACK,
    port: 0,
    async fetch(request) {
      await request.arrayBuffer();
      receiver.count++;
      receiver.lastAt = performance.now();
      const id = request.headers.get("webhook-id") ?? "";
      if (!receiver.arrivals.has(id)) receiver.arrivals.set(id, performance.now());
      return new Response(null, { status: 204 });
    },
  });
  receiver.url = `http://${LOOPBACK}:${server.port}/hooks`;
  return receiver;
}

async function call(serviceUrl: string, token: string, method: string, path: string, body?: unknown) {
  const response = await fetch(serviceUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (response.status >= 300)
    throw new BenchError(`${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export async function createEndpoint(serviceUrl: string, token: string, receiverUrl: string): Promise<string> {
  const created = await call(serviceUrl, token, "POST", "/v1/webhooks/endpoints", {
    url: receiverUrl,
    event_types: ["bench.*"],
  });
  return (created.endpoint as { id: string }).id;
}

export interface Drain {
  drained: number;
  seconds: number;
  /** Deliveries still waiting when the window closed. */
  left: number;
}

export interface DeliveryFigures {
  drained: number;
  drainSeconds: number;
  deliveriesPerSec: number;
  latencySamples: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

/**
 * Right after a create row: how fast its backlog drains with nothing else running. Waited for
 * before the next row, too: the service delivering on core 0 and the receiver taking it on
 * core 1 would slow whatever is measured next.
 */
export async function drainBacklog(serviceUrl: string, token: string, receiver: BenchReceiver): Promise<Drain> {
  const startCount = receiver.count;
  const started = performance.now();
  let waiting = Number.POSITIVE_INFINITY;
  while (performance.now() - started < DRAIN_WINDOW_MS && waiting > 0) {
    await Bun.sleep(100);
    const stats = (await call(serviceUrl, token, "GET", "/v1/webhooks/stats")) as { queue: Record<string, number> };
    waiting = (stats.queue.pending ?? 0) + (stats.queue.leased ?? 0) + (stats.queue.failed ?? 0);
  }
  const drained = receiver.count - startCount;
  // Emptied before the window closed: the last arrival, not the poll that noticed, ends the drain.
  const seconds = drained === 0 ? 0 : ((waiting === 0 ? receiver.lastAt : performance.now()) - started) / 1000;
  return { drained, seconds, left: waiting };
}

/**
 * Create → receipt latency, one notification at a time with an idle queue; `drains` are the
 * backlogs the create rows left. An endpoint whose backlog did not drain is replaced first, so
 * its leftovers do not queue ahead of the samples.
 */
export async function measureDeliveries(
  serviceUrl: string,
  token: string,
  receiver: BenchReceiver,
  endpointId: string,
  recipient: string,
  drains: readonly Drain[],
): Promise<DeliveryFigures> {
  if (drains.some((drain) => drain.left > 0)) {
    await call(serviceUrl, token, "DELETE", `/v1/webhooks/endpoints/${endpointId}`);
    await createEndpoint(serviceUrl, token, receiver.url);
  }
  const drained = drains.reduce((sum, drain) => sum + drain.drained, 0);
  const drainSeconds = drains.reduce((sum, drain) => sum + drain.seconds, 0);

  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const sentAt = performance.now();
    const created = await call(serviceUrl, token, "POST", "/v1/notifications", {
      recipients: { user_ids: [recipient] },
      type: "bench.latency",
      title: `latency ${i}`,
    });
    const id = `msg_${(created.notification as { id: string }).id}`;
    const deadline = performance.now() + LATENCY_TIMEOUT_MS;
    while (!receiver.arrivals.has(id)) {
      if (performance.now() > deadline) throw new BenchError(`notification ${id} did not arrive within 10 s`);
      await Bun.sleep(0.2);
    }
    latencies.push((receiver.arrivals.get(id) ?? sentAt) - sentAt);
    await Bun.sleep(LATENCY_GAP_MS);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    drained,
    drainSeconds,
    deliveriesPerSec: drained === 0 ? 0 : drained / drainSeconds,
    latencySamples: latencies.length,
    latencyP50Ms: at(0.5),
    latencyP99Ms: at(0.99),
  };
}

export function formatDeliveries(figures: DeliveryFigures): string {
  const drain =
    figures.drained === 0
      ? "webhook delivery: no backlog to drain (the notification-create row leaves it)"
      : `webhook delivery: ${figures.drained.toLocaleString("en-US")} deliveries drained in ${figures.drainSeconds.toFixed(1)} s = ${Math.round(figures.deliveriesPerSec).toLocaleString("en-US")} deliveries/s to a local receiver`;
  return [
    drain,
    `create → receipt latency over ${figures.latencySamples} sequential notifications: p50 ${figures.latencyP50Ms.toFixed(2)} ms, p99 ${figures.latencyP99Ms.toFixed(2)} ms`,
  ].join("\n");
}
