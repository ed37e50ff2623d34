/** Random tokens, hashes and constant-time comparison. No framework import. */
import { timingSafeEqual } from "node:crypto";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A random string of `bytes` bytes, base64url without padding. */
export function randomToken(bytes = 32): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url");
}

/** `length` random characters of lowercase Crockford base32 (no `_`, safe inside `wdn_<id>_…`). */
export function randomBase32(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const byte of bytes) out += CROCKFORD[byte & 31];
  return out.toLowerCase();
}

/** ULID: 48-bit millisecond time + 80 random bits, so ids sort by creation time. */
export function ulid(now = Date.now()): string {
  let time = "";
  let rest = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  let tail = "";
  for (const byte of random) tail += CROCKFORD[byte & 31];
  return time + tail;
}

export function sha256Hex(value: string): string {
  return new Bun.CryptoHasher("sha256").update(value).digest("hex");
}

export function hmacHex(key: Uint8Array, value: string): string {
  return new Bun.CryptoHasher("sha256", key).update(value).digest("hex");
}

/** Equal-length hex or text compared without leaking where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
