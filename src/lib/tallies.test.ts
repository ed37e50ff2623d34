import { describe, expect, test } from "bun:test";
import client from "prom-client";
import { CounterTallies, TalliedHistogram } from "./tallies";

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED = [0.0005, 0.001, 0.004, 0.05, 0.05, 0.7, 3, 12];

describe("tallies", () => {
  test("should print a tallied histogram exactly as prom-client's own Histogram", async () => {
    const stockRegistry = new client.Registry();
    const talliedRegistry = new client.Registry();
    const config = { name: "x_seconds", help: "x", labelNames: ["route"] as const, buckets: BUCKETS };
    const stock = new client.Histogram({ ...config, registers: [stockRegistry] });
    const tallied = new TalliedHistogram({ ...config, registers: [talliedRegistry] });
    const series = { a: tallied.tally({ route: "/a" }), b: tallied.tally({ route: "/b" }) };
    for (const value of OBSERVED) {
      stock.observe({ route: "/a" }, value);
      series.a.observe(value);
    }
    stock.observe({ route: "/b" }, 0.02);
    series.b.observe(0.02);

    expect(await talliedRegistry.metrics()).toBe(await stockRegistry.metrics());
    expect(await talliedRegistry.getMetricsAsJSON()).toEqual(await stockRegistry.getMetricsAsJSON());
  });

  test("should keep counting into handed-out series after a reset", async () => {
    const tallied = new TalliedHistogram({ name: "y_seconds", help: "y", labelNames: ["route"], buckets: BUCKETS });
    const series = tallied.tally({ route: "/a" });
    series.observe(0.5);
    tallied.reset();
    series.observe(0.05);
    const values = (await tallied.get()).values;
    expect(values.find((v) => v.metricName === "y_seconds_count")?.value).toBe(1);
    expect(values.find((v) => v.metricName === "y_seconds_sum")?.value).toBe(0.05);
  });

  test("should refuse a label the histogram does not declare, when the series is made", () => {
    const tallied = new TalliedHistogram({ name: "z_seconds", help: "z", labelNames: ["route"], buckets: BUCKETS });
    expect(() => tallied.tally({ nope: "x" } as never)).toThrow();
  });

  test("should hand out one series per label set, however often it is asked for", async () => {
    const registry = new client.Registry();
    const tallied = new TalliedHistogram({
      name: "w_seconds",
      help: "w",
      labelNames: ["method", "route"],
      buckets: BUCKETS,
      registers: [registry],
    });
    tallied.tally({ method: "GET", route: "/a" }).observe(0.5);
    tallied.tally({ route: "/a", method: "GET" }).observe(0.5);
    expect(await registry.metrics()).toContain('w_seconds_count{method="GET",route="/a"} 2\n');
    expect((await registry.metrics()).match(/w_seconds_count/g)).toHaveLength(1);
  });

  test("should hand counts to the counter at scrape time, and only once", async () => {
    const registry = new client.Registry();
    const tallies = new CounterTallies<"status">();
    new client.Counter({
      name: "n_total",
      help: "n",
      labelNames: ["status"],
      registers: [registry],
      collect() {
        tallies.flushInto(this);
      },
    });
    const ok = tallies.of({ status: "200" });
    const missing = tallies.of({ status: "404" });
    ok.inc();
    ok.inc();
    missing.inc();
    expect(await registry.metrics()).toContain('n_total{status="200"} 2\nn_total{status="404"} 1');
    ok.inc();
    expect(await registry.metrics()).toContain('n_total{status="200"} 3\nn_total{status="404"} 1');
  });
});
