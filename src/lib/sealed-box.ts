/** AES-256-GCM with WebCrypto: small secrets (private JWKs) stored encrypted at rest. */

const ALGORITHM = "AES-GCM";

export async function importSealingKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.byteLength !== 32) throw new Error("sealing key must be 32 bytes");
  return crypto.subtle.importKey("raw", raw.slice(), ALGORITHM, false, ["encrypt", "decrypt"]);
}

/** `v1.<iv>.<ciphertext>` in base64url; `context` is bound as additional data (e.g. the key id). */
export async function seal(key: CryptoKey, plaintext: string, context: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ciphertext = await crypto.subtle.encrypt(
    { name: ALGORITHM, iv, additionalData: new TextEncoder().encode(context) },
    key,
    new TextEncoder().encode(plaintext),
  );
  return `v1.${Buffer.from(iv).toString("base64url")}.${Buffer.from(ciphertext).toString("base64url")}`;
}

export async function open(key: CryptoKey, sealed: string, context: string): Promise<string> {
  const [version, iv, ciphertext] = sealed.split(".");
  if (version !== "v1" || !iv || !ciphertext) throw new Error("unrecognised sealed value");
  let plaintext: ArrayBuffer;
  try {
    plaintext = await crypto.subtle.decrypt(
      { name: ALGORITHM, iv: Buffer.from(iv, "base64url"), additionalData: new TextEncoder().encode(context) },
      key,
      Buffer.from(ciphertext, "base64url"),
    );
  } catch {
    // WebCrypto says only "OperationError": the one likely cause is a key other than the sealer's.
    throw new Error(
      `a sealed value (${context}) cannot be unsealed with this master key: MASTER_KEY or DATA_DIR/master.key is not the one it was sealed with`,
    );
  }
  return new TextDecoder().decode(plaintext);
}
