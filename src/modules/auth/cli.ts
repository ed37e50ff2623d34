import { openDatabase } from "../../../db/client";
import type { Config } from "../../config";
import { systemClock } from "../../lib/clock";
import { CLOCK_SKEW_SECONDS } from "./access-tokens";
import { KeyRing, rotateKeys } from "./key-ring";
import { deriveServerSecrets, loadMasterKey } from "./server-secrets";

/**
 * `keys rotate`: promotes the published next key, keeps the old one verifying until its tokens
 * expire, publishes a new next key. Running servers pick it up within seconds.
 */
export async function keysRotate(config: Config): Promise<string> {
  const db = openDatabase(config.dataDir);
  try {
    const secrets = await deriveServerSecrets(loadMasterKey(config.dataDir, config.masterKey));
    const options = {
      db,
      sealingKey: secrets.sealingKey,
      alg: config.jwt.alg,
      clock: systemClock,
      retireAfterMs: (config.jwt.accessTokenTtlSeconds + CLOCK_SKEW_SECONDS) * 1000,
    };
    await KeyRing.open(options); // creates the ring on a fresh database
    const { current, next } = await rotateKeys(options);
    return `signing key ${current} is now current; ${next} is published as next`;
  } finally {
    db.$client.close();
  }
}
