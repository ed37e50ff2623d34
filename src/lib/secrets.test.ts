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

test("a ULID spells its millisecond, and within one the random part carries into the next digit", () => {
  const ms = Date.UTC(2030, 0, 1) + 123;
  const real = crypto.getRandomValues.bind(crypto);
  // Random digits 0…0 31: the next id of the same millisecond must carry, not wrap.
  crypto.getRandomValues = (<T extends ArrayBufferView | null>(array: T): T => {
    if (array instanceof Uint8Array) array.fill(0).fill(31, 15);
    return array;
  }) as typeof crypto.getRandomValues;
  let first: string;
  try {
    first = ulid(ms);
  } finally {
    crypto.getRandomValues = real;
  }
  expect(first).toBe(`${ulidFloor(ms).slice(0, 10)}000000000000000Z`);
  expect(ulid(ms)).toBe(`${ulidFloor(ms).slice(0, 10)}0000000000000010`);
  expect(ulid(ms)).toBe(`${ulidFloor(ms).slice(0, 10)}0000000000000011`);
  // An earlier clock reading keeps counting in the last millisecond: ids never sort backwards.
  expect(ulid(ms - 5_000)).toBe(`${ulidFloor(ms).slice(0, 10)}0000000000000012`);
  expect(first.slice(0, 10)).toBe("01Q3DCBD3V"); // 2030-01-01T00:00:00.123Z in Crockford base32
});
