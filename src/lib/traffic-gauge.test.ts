import { expect, test } from "bun:test";
import { TrafficGauge } from "./traffic-gauge";

test("busy once a window saw requests at the threshold's rate, idle again when they stop", () => {
  let now = 0;
  const gauge = new TrafficGauge(2000, () => now);
  expect(gauge.busy()).toBe(false);
  for (let i = 0; i < 150; i++) gauge.arrived(); // 150 in 100 ms = 1 500/s
  now = 100;
  expect(gauge.busy()).toBe(false);
  for (let i = 0; i < 250; i++) gauge.arrived(); // 2 500/s
  now = 200;
  expect(gauge.busy()).toBe(true);
  now = 250; // the window is still open: the last verdict stands
  expect(gauge.busy()).toBe(true);
  now = 400;
  expect(gauge.busy()).toBe(false);
});
