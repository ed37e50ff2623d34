import { eq } from "drizzle-orm";
import { openDatabase } from "../../../db/client";
import { signingKeys } from "../../../db/schema";
import type { Config, JwtAlg } from "../../config";
import { systemClock } from "../../lib/clock";
import { AuditAction } from "../audit/actions";
import { AuditTrail } from "../audit/trail";
import { CLOCK_SKEW_SECONDS } from "./access-tokens";
import { KeyRing, rotateKeys } from "./key-ring";
import { deriveServerSecrets, loadMasterKey } from "./server-secrets";
import { auditKeyOf } from "./setup";

/**
 * `keys rotate`: promotes the published next key, keeps the old one verifying until its tokens
 * expire, publishes a new next key. Running servers pick it up within seconds.
 */
export async function keysRotate(config: Config): Promise<string> {
  const db = openDatabase(config.dataDir);
  try {
    const secrets = await deriveServerSecrets(loadMasterKey(config.dataDir, config.masterKey));
    // Rotation keeps the ring's algorithm: a JWT_ALG change is the server's to make, at its start.
    const existing = db.select().from(signingKeys).where(eq(signingKeys.status, "current")).get();
    const options = {
      db,
      sealingKey: secrets.sealingKey,
      alg: (existing?.alg ?? config.jwt.alg) as JwtAlg,
      clock: systemClock,
      retireAfterMs: (config.jwt.accessTokenTtlSeconds + CLOCK_SKEW_SECONDS) * 1000,
    };
    if (!existing) await KeyRing.open(options); // a fresh database: create the ring first
    const { current, next } = await rotateKeys(options);
    new AuditTrail(db, auditKeyOf(config, secrets), systemClock).record({
      action: AuditAction.keysRotated,
      outcome: "success",
      tenantId: null,
      actor: { type: "system", id: "cli" },
      target: { type: "signing_key", id: current },
      reason: `${next} published as next`,
    });
    return `signing key ${current} is now current; ${next} is published as next`;
  } finally {
    db.$client.close();
  }
}
