import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadMasterKey, MASTER_KEY_FILE } from "./server-secrets";

const dir = mkdtempSync(join(tmpdir(), "warden-master-key-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, MASTER_KEY_FILE);
const modeOf = () => statSync(file).mode & 0o777;

describe("loadMasterKey", () => {
  test("should create the key private to its owner", () => {
    expect(loadMasterKey(dir, undefined).byteLength).toBe(32);
    expect(modeOf()).toBe(0o600);
  });

  test.each(["644", "640", "604", "666"])(
    "should make a key readable by others (mode %s) 0600, and read it",
    (mode) => {
      const key = Buffer.alloc(32, 9);
      writeFileSync(file, key.toString("base64"));
      chmodSync(file, Number.parseInt(mode, 8));
      expect(Buffer.from(loadMasterKey(dir, undefined))).toEqual(key);
      expect(modeOf()).toBe(0o600);
    },
  );

  test("should leave a key only its owner may read as it is", () => {
    chmodSync(file, 0o400);
    loadMasterKey(dir, undefined);
    expect(modeOf()).toBe(0o400);
  });
});
