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

/**
 * A ULID source: 48-bit millisecond time + 80 random bits, so ids sort by creation time.
 * Monotonic (the spec's monotonic mode): in the same millisecond the random part counts up, so
 * ids made one after another also sort in that order (inbox and list cursors rely on it), and an
 * earlier clock reading keeps counting in the last millisecond. Each source keeps its own last
 * id: the process shares `ulid`; a test that names its own times takes a source of its own.
 */
export function ulidSource(): (now?: number) => string {
  let lastTime = -1;
  const lastRandom = new Uint8Array(16);
  // What of the last id only changes with the millisecond or a carry: its time part and first 15 random characters.
  let timePart = "";
  let randomHead = "";
  return (now = Date.now()) => {
    if (now > lastTime) {
      lastTime = now;
      timePart = ulidTime(now);
      crypto.getRandomValues(lastRandom);
      for (let i = 0; i < 16; i++) lastRandom[i] = (lastRandom[i] ?? 0) & 31;
      randomHead = headOf(lastRandom);
    } else {
      let i = 15;
      for (; i >= 0; i--) {
        const digit = ((lastRandom[i] ?? 0) + 1) & 31;
        lastRandom[i] = digit;
        if (digit !== 0) break;
      }
      if (i < 15) randomHead = headOf(lastRandom);
    }
    return timePart + randomHead + CROCKFORD[lastRandom[15] ?? 0];
  };
}

/** The process's ULIDs (see ulidSource). */
export const ulid = ulidSource();

function headOf(digits: Uint8Array): string {
  let head = "";
  for (let i = 0; i < 15; i++) head += CROCKFORD[digits[i] ?? 0];
  return head;
}

/** The 10-character time part of a ULID. */
function ulidTime(ms: number): string {
  let time = "";
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  return time;
}

/** The smallest ULID of millisecond `ms`: ids made at or after it sort at or after it. */
export function ulidFloor(ms: number): string {
  return `${ulidTime(Math.max(0, Math.floor(ms)))}${"0".repeat(16)}`;
}

export function sha256Hex(value: string): string {
  return Bun.SHA256.hash(value, "hex");
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
