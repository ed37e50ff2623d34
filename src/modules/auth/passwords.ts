import { randomToken } from "../../lib/secrets";

/** OWASP's argon2id minimum (19 MiB, 2 passes): still milliseconds, so never on a hot path. */
const ARGON2 = { algorithm: "argon2id", memoryCost: 19_456, timeCost: 2 } as const;

export function hashPassword(password: string): Promise<string> {
  return Bun.password.hash(password, ARGON2);
}

let dummyHash: Promise<string> | undefined;

/**
 * Verifies `password` against `hash`; with no hash (unknown user) it still spends the same time
 * on a dummy hash, so response timing does not reveal which usernames exist.
 */
export async function verifyPassword(password: string, hash: string | undefined): Promise<boolean> {
  if (hash === undefined) {
    dummyHash ??= hashPassword(randomToken(16));
    await Bun.password.verify(password, await dummyHash);
    return false;
  }
  try {
    return await Bun.password.verify(password, hash);
  } catch {
    return false;
  }
}

/** A generated password shown once: 24 base64url characters, 144 bits. */
export function generatePassword(): string {
  return randomToken(18);
}
