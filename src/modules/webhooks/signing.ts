/** Standard Webhooks signatures (https://www.standardwebhooks.com): `v1,<base64 HMAC-SHA256>`. */

const SECRET_PREFIX = "whsec_";
const SECRET_BYTES = 32;

export function newWebhookSecret(): string {
  return SECRET_PREFIX + Buffer.from(crypto.getRandomValues(new Uint8Array(SECRET_BYTES))).toString("base64");
}

export function secretBytes(secret: string): Uint8Array {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error("not a whsec_ secret");
  return new Uint8Array(Buffer.from(secret.slice(SECRET_PREFIX.length), "base64"));
}

/** The signature of one key over `id.timestamp.body`. */
export function sign(key: Uint8Array, id: string, timestampSeconds: number, body: string): string {
  const mac = new Bun.CryptoHasher("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/** The `webhook-signature` header: one signature per live secret, space-separated. */
export function signatureHeader(keys: readonly Uint8Array[], id: string, timestampSeconds: number, body: string) {
  return keys.map((key) => sign(key, id, timestampSeconds, body)).join(" ");
}
