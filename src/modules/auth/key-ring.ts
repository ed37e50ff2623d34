import { and, eq, inArray, lte } from "drizzle-orm";
import { exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import type { Db } from "../../../db/client";
import { signingKeys } from "../../../db/schema";
import type { JwtAlg } from "../../config";
import type { Clock } from "../../lib/clock";
import { open, seal } from "../../lib/sealed-box";
import { randomBase32 } from "../../lib/secrets";

type KeyRow = typeof signingKeys.$inferSelect;

interface LoadedKey {
  readonly kid: string;
  readonly alg: string;
  readonly status: KeyRow["status"];
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
  verifyUntil: number | null;
  privateKey?: CryptoKey;
}

const PUBLISHED: readonly KeyRow["status"][] = ["next", "current", "previous"];
/** Unknown kids trigger at most one reload per interval, so garbage tokens cannot hammer SQLite. */
const MISS_RELOAD_INTERVAL_MS = 1000;

export interface KeyRingOptions {
  db: Db;
  sealingKey: CryptoKey;
  alg: JwtAlg;
  clock: Clock;
  /** How long a rotated-out key must keep verifying: the longest access-token lifetime plus skew. */
  retireAfterMs: number;
}

/**
 * The signing keys, in memory: `current` signs, `next` is published ahead of its promotion,
 * `previous` keeps verifying until its tokens have expired. SQLite holds the ring; another
 * process (the `keys rotate` CLI) may change it, so the ring reloads on a timer and on an
 * unknown kid.
 */
export class KeyRing {
  private keys = new Map<string, LoadedKey>();
  private lastMissReload = 0;
  /** When this process last signed with each key: its tokens expire `retireAfterMs` later at most. */
  private readonly signedAt = new Map<string, number>();

  private constructor(private readonly options: KeyRingOptions) {}

  static async open(options: KeyRingOptions): Promise<KeyRing> {
    const ring = new KeyRing(options);
    await ensureKeys(options);
    await ring.reload();
    return ring;
  }

  async reload(): Promise<void> {
    const rows = this.options.db
      .select()
      .from(signingKeys)
      .where(inArray(signingKeys.status, [...PUBLISHED]))
      .all();
    const next = new Map<string, LoadedKey>();
    for (const row of rows) {
      const known = this.keys.get(row.kid);
      const publicJwk = JSON.parse(row.publicJwk) as JWK;
      next.set(row.kid, {
        kid: row.kid,
        alg: row.alg,
        status: row.status,
        publicJwk,
        verifyUntil: row.verifyUntil,
        publicKey: known?.publicKey ?? ((await importJWK(publicJwk, row.alg)) as CryptoKey),
        privateKey: row.status === "current" ? await this.privateKeyOf(row, known) : undefined,
      });
    }
    this.keys = next;
    this.coverWhatWeSigned();
  }

  /**
   * A key rotated out by another process (the CLI, with its own ACCESS_TOKEN_TTL, and seconds
   * before this process noticed) keeps verifying at least until the tokens this process signed
   * with it expire: written to the ring, so every process sharing it agrees.
   */
  private coverWhatWeSigned(): void {
    for (const [kid, at] of this.signedAt) {
      const key = this.keys.get(kid);
      if (key?.status === "current") continue;
      const needed = at + this.options.retireAfterMs;
      if (key?.status === "previous" && key.verifyUntil !== null && key.verifyUntil < needed) {
        // Forgotten only once written: a write that fails (the CLI holding the lock) is tried at the next reload.
        this.options.db
          .update(signingKeys)
          .set({ verifyUntil: needed })
          .where(and(eq(signingKeys.kid, kid), lte(signingKeys.verifyUntil, needed)))
          .run();
        key.verifyUntil = needed;
      }
      this.signedAt.delete(kid);
    }
  }

  /** The key new tokens are signed with. */
  signingKey(): { kid: string; alg: string; privateKey: CryptoKey } {
    for (const key of this.keys.values()) {
      if (key.status === "current" && key.privateKey) {
        this.signedAt.set(key.kid, this.options.clock.now());
        return { kid: key.kid, alg: key.alg, privateKey: key.privateKey };
      }
    }
    throw new Error("key ring has no current key");
  }

  /** The public key for `kid` if it may still verify tokens, else undefined. Never touches disk on a hit. */
  verificationKey(kid: string): { alg: string; publicKey: CryptoKey } | undefined {
    const key = this.keys.get(kid);
    if (!key) return undefined;
    if (key.status === "previous" && key.verifyUntil !== null && key.verifyUntil < this.options.clock.now()) {
      return undefined;
    }
    return key;
  }

  /** For a kid we do not know: maybe another process rotated. Reloads at most once a second. */
  async reloadForUnknownKid(kid: string): Promise<boolean> {
    const now = this.options.clock.now();
    if (now - this.lastMissReload < MISS_RELOAD_INTERVAL_MS) return false;
    this.lastMissReload = now;
    await this.reload();
    return this.keys.has(kid);
  }

  /** The public JWKS: next, current and previous (still verifying) keys. */
  jwks(): { keys: JWK[] } {
    const order = { current: 0, next: 1, previous: 2, retired: 3 };
    return {
      keys: [...this.keys.values()]
        .filter((key) => this.verificationKey(key.kid))
        .sort((a, b) => order[a.status] - order[b.status])
        .map((key) => ({ ...key.publicJwk, kid: key.kid, alg: key.alg, use: "sig" })),
    };
  }

  private async privateKeyOf(row: KeyRow, known: LoadedKey | undefined): Promise<CryptoKey> {
    if (known?.privateKey) return known.privateKey;
    const jwk = JSON.parse(await open(this.options.sealingKey, row.privateJwkSealed, row.kid)) as JWK;
    return (await importJWK(jwk, row.alg)) as CryptoKey;
  }
}

async function newKeyRow(
  options: KeyRingOptions,
  status: "next" | "current",
): Promise<typeof signingKeys.$inferInsert> {
  const { publicKey, privateKey } = await generateKeyPair(options.alg, { extractable: true });
  const kid = randomBase32(16);
  const now = options.clock.now();
  return {
    kid,
    alg: options.alg,
    status,
    publicJwk: JSON.stringify(await exportJWK(publicKey)),
    privateJwkSealed: await seal(options.sealingKey, JSON.stringify(await exportJWK(privateKey)), kid),
    createdAt: now,
    activatedAt: status === "current" ? now : null,
  };
}

/** First start (or an algorithm change): a current and a next key. */
async function ensureKeys(options: KeyRingOptions): Promise<void> {
  const { db } = options;
  const current = db.select().from(signingKeys).where(eq(signingKeys.status, "current")).get();
  if (current?.alg === options.alg) return;
  const rows = [await newKeyRow(options, "current"), await newKeyRow(options, "next")];
  db.transaction(
    (tx) => {
      // Another process may have created the ring meanwhile; the transaction re-checks under the lock.
      const again = tx.select().from(signingKeys).where(eq(signingKeys.status, "current")).get();
      if (again?.alg === options.alg) return;
      retireCurrentAndNext(tx as unknown as Db, options);
      tx.insert(signingKeys).values(rows).run();
    },
    { behavior: "immediate" },
  );
}

function retireCurrentAndNext(db: Db, options: KeyRingOptions): void {
  const now = options.clock.now();
  db.update(signingKeys)
    .set({ status: "previous", verifyUntil: now + options.retireAfterMs })
    .where(eq(signingKeys.status, "current"))
    .run();
  db.update(signingKeys).set({ status: "retired" }).where(eq(signingKeys.status, "next")).run();
}

/**
 * `keys rotate`: the next key (already published) becomes current, the current one becomes
 * previous and keeps verifying for `retireAfterMs`, a fresh next key is published, and previous
 * keys past their time are retired. Safe to run while servers use the same database.
 */
export async function rotateKeys(
  options: KeyRingOptions,
  /** Runs in the rotation's transaction (its audit event): if it throws, nothing rotates. */
  within?: (tx: unknown, rotated: { current: string; next: string }) => void,
): Promise<{ current: string; next: string }> {
  const { db, clock } = options;
  const fresh = await newKeyRow(options, "next");
  return db.transaction(
    (tx) => {
      const now = clock.now();
      tx.update(signingKeys)
        .set({ status: "retired" })
        .where(and(eq(signingKeys.status, "previous"), lte(signingKeys.verifyUntil, now)))
        .run();
      const next = tx.select().from(signingKeys).where(eq(signingKeys.status, "next")).get();
      if (!next || next.alg !== options.alg)
        throw new Error("key ring has no usable next key; start the service once first");
      tx.update(signingKeys)
        .set({ status: "previous", verifyUntil: now + options.retireAfterMs })
        .where(eq(signingKeys.status, "current"))
        .run();
      tx.update(signingKeys).set({ status: "current", activatedAt: now }).where(eq(signingKeys.kid, next.kid)).run();
      tx.insert(signingKeys).values(fresh).run();
      const rotated = { current: next.kid, next: fresh.kid };
      within?.(tx, rotated);
      return rotated;
    },
    { behavior: "immediate" },
  );
}
