import { expect, test } from "bun:test";
import { ulid, ulidFloor } from "./secrets";

test("ULIDs made one after another sort in that order, within one millisecond too", () => {
  const ids = Array.from({ length: 1000 }, () => ulid(1_700_000_000_000));
  expect([...ids].sort()).toEqual(ids);
  expect(new Set(ids).size).toBe(ids.length);
});

test("ulidFloor(ms) sorts before every ULID of that millisecond and after every earlier one", () => {
  const ms = Date.UTC(2026, 5, 1);
  const at = ulid(ms + 10_000);
  expect(ulidFloor(ms + 10_000) <= at).toBe(true);
  expect(ulidFloor(ms + 10_001) > at).toBe(true);
  expect(ulidFloor(ms + 10_000)).toMatch(/^[0-9A-HJKMNP-TV-Z]{10}0{16}$/);
});
