import { expect, test } from "bun:test";
import { TtlCache } from "./ttl-cache";

test("serves a loaded value until its TTL passes or it is deleted", () => {
  const cache = new TtlCache<string, number>(1000);
  let loads = 0;
  const load = () => ++loads;
  expect(cache.get("a", 0, load)).toBe(1);
  expect(cache.get("a", 999, load)).toBe(1);
  expect(cache.get("a", 1000, load)).toBe(2);
  cache.delete("a");
  expect(cache.get("a", 1001, load)).toBe(3);
  expect(cache.get("b", 1001, load)).toBe(4);
});

test("never grows past its bound", () => {
  const cache = new TtlCache<number, number>(1000, 3);
  for (let i = 0; i < 10; i++) cache.get(i, 0, () => i);
  let loads = 0;
  cache.get(9, 0, () => ++loads);
  expect(loads).toBe(0);
  cache.get(0, 0, () => ++loads);
  expect(loads).toBe(1);
});
