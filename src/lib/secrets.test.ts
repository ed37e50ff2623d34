import { expect, test } from "bun:test";
import { ulidFloor, ulidSource } from "./secrets";

// Each test its own source: the process's ulid keeps counting in the latest millisecond any
// caller named, which another test file's times would move.
test("ULIDs made one after another sort in that order, within one millisecond too", () => {
  const ulid = ulidSource();
  const ids = Array.from({ length: 1000 }, () => ulid(1_700_000_000_000));
  expect([...ids].sort()).toEqual(ids);
  expect(new Set(ids).size).toBe(ids.length);
});

test("ulidFloor(ms) sorts before every ULID of that millisecond and after every earlier one", () => {
  const ms = Date.UTC(2026, 5, 1);
  const at = ulidSource()(ms + 10_000);
  expect(ulidFloor(ms + 10_000) <= at).toBe(true);
  expect(ulidFloor(ms + 10_001) > at).toBe(true);
  expect(ulidFloor(ms + 10_000)).toMatch(/^[0-9A-HJKMNP-TV-Z]{10}0{16}$/);
});

test("a ULID spells its millisecond, and within one the random part carries into the next digit", () => {
  const ms = Date.UTC(2030, 0, 1) + 123;
  const ulid = ulidSource();
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

test("within one millisecond the random part counts up by one, carries included; a new millisecond has its own time part", () => {
  const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const value = (id: string) => [...id.slice(10)].reduce((n, c) => n * 32n + BigInt(CROCKFORD.indexOf(c)), 0n);
  const ms = Date.UTC(2031, 6, 1);
  const ulid = ulidSource();
  // 2 000 ids: dozens of carries out of the last character, some out of the last two.
  const ids = Array.from({ length: 2000 }, () => ulid(ms));
  for (let i = 1; i < ids.length; i++) {
    expect(value(ids[i] as string) - value(ids[i - 1] as string)).toBe(1n);
    expect(ids[i]?.slice(0, 10)).toBe(ulidFloor(ms).slice(0, 10));
  }
  const next = ulid(ms + 1);
  expect(next.slice(0, 10)).toBe(ulidFloor(ms + 1).slice(0, 10));
  expect(next).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
});
