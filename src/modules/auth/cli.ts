import { eq } from "drizzle-orm";
import { openExistingDatabase } from "../../../db/client";
import { signingKeys } from "../../../db/schema";
import type { Config, JwtAlg } from "../../config";
import { systemClock } from "../../lib/clock";
import { AuditAction } from "../audit/actions";
import { AuditTrail } from "../audit/trail";
import { tokenCoverMs } from "./access-tokens";
import { KeyRing, rotateKeys } from "./key-ring";
import { serverSecretsFor } from "./server-secrets";
import { KEY_RING_RELOAD_MS } from "./setup";

/** How long clients may cache the JWKS (its Cache-Control max-age): a next key younger than this may be unknown to them. */
export const JWKS_CACHE_MS = 300_000;

/**
 * `keys rotate`: promotes the published next key, keeps the old one verifying until its tokens
 * expire, publishes a new next key. Running servers pick it up within seconds. Refuses, unless
 * forced, while the next key is younger than the JWKS cache: tokens it signed would fail at
 * clients still holding the JWKS from before it was published.
 */
export async function keysRotate(config: Config, options: { force?: boolean } = {}): Promise<string> {
  const db = openExistingDatabase(config.dataDir);
  try {
    const secrets = await serverSecretsFor(config);
    const next = db.select().from(signingKeys).where(eq(signingKeys.status, "next")).get();
    const age = next ? systemClock.now() - next.createdAt : Number.POSITIVE_INFINITY;
    // Running servers publish a key the CLI made at their next key-ring reload: that counts too.
    const wait = JWKS_CACHE_MS + KEY_RING_RELOAD_MS;
    if (!options.force && age < wait) {
      const ready = new Date(systemClock.now() + wait - age).toISOString();
      throw new Error(
        `the next key was published ${Math.round(age / 1000)} s ago; clients may cache the JWKS for ${JWKS_CACHE_MS / 60_000} minutes and not hold it yet: rotate after ${ready}, or pass --force`,
      );
    }
    // Rotation keeps the ring's algorithm: a JWT_ALG change is the server's to make, at its start.
    const existing = db.select().from(signingKeys).where(eq(signingKeys.status, "current")).get();
    const ringOptions = {
      db,
      sealingKey: secrets.sealingKey,
      alg: (existing?.alg ?? config.jwt.alg) as JwtAlg,
      clock: systemClock,
      retireAfterMs: tokenCoverMs(config.jwt),
    };
    const trail = new AuditTrail(db, secrets.auditKey, systemClock);
    trail.assertKeyMatches();
    if (!existing) await KeyRing.open(ringOptions); // a fresh database: create the ring first
    const rotated = await rotateKeys(ringOptions, (tx, { current, next }) =>
      trail.append(tx, {
        action: AuditAction.keysRotated,
        outcome: "success",
        tenantId: null,
        actor: { type: "system", id: "cli" },
        target: { type: "signing_key", id: current },
        reason: `${next} published as next`,
      }),
    );
    return `signing key ${rotated.current} is now current; ${rotated.next} is published as next`;
  } finally {
    db.$client.close();
  }
}
