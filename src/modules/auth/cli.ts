import { eq } from "drizzle-orm";
import { openDatabase } from "../../../db/client";
import { signingKeys } from "../../../db/schema";
import type { Config, JwtAlg } from "../../config";
import { systemClock } from "../../lib/clock";
import { AuditAction } from "../audit/actions";
import { AuditTrail } from "../audit/trail";
import { tokenCoverMs } from "./access-tokens";
import { KeyRing, rotateKeys } from "./key-ring";
import { serverSecretsFor } from "./server-secrets";

/**
 * `keys rotate`: promotes the published next key, keeps the old one verifying until its tokens
 * expire, publishes a new next key. Running servers pick it up within seconds.
 */
export async function keysRotate(config: Config): Promise<string> {
  const db = openDatabase(config.dataDir);
  try {
    const secrets = await serverSecretsFor(config);
    // Rotation keeps the ring's algorithm: a JWT_ALG change is the server's to make, at its start.
    const existing = db.select().from(signingKeys).where(eq(signingKeys.status, "current")).get();
    const options = {
      db,
      sealingKey: secrets.sealingKey,
      alg: (existing?.alg ?? config.jwt.alg) as JwtAlg,
      clock: systemClock,
      retireAfterMs: tokenCoverMs(config.jwt),
    };
    const trail = new AuditTrail(db, secrets.auditKey, systemClock);
    trail.assertKeyMatches();
    if (!existing) await KeyRing.open(options); // a fresh database: create the ring first
    const { current, next } = await rotateKeys(options);
    trail.record({
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
