import { afterAll, describe, expect, test } from "bun:test";
import { type CompactJWSHeaderParameters, CompactSign, decodeJwt, exportJWK, generateKeyPair } from "jose";
import { createTestContext } from "../../testing/app";
import { login, seedAndLogin } from "../../testing/identity";

const ctx = await createTestContext();
afterAll(() => ctx.close());

const victim = await seedAndLogin(ctx, "acme", "viewer");
const victimSid = String(decodeJwt(victim.accessToken).sid);
const ttlSeconds = ctx.deps.config.jwt.accessTokenTtlSeconds;
const attacker = await generateKeyPair("EdDSA", { extractable: true });
const attackerJwk = await exportJWK(attacker.publicKey);
const attackerSpki = Buffer.from(await crypto.subtle.exportKey("spki", attacker.publicKey)).toString("base64");

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const encoder = new TextEncoder();
const b64 = (value: unknown) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const bearer = (token: string) => `Bearer ${token}`;
const ourKey = () => ctx.deps.security.keyRing.signingKey();

const nowSeconds = () => Math.floor(ctx.clock.now() / 1000);

/** The claims we would issue to the victim right now. */
function genuineClaims(): Record<string, unknown> {
  const iat = nowSeconds();
  return {
    iss: "warden",
    aud: "warden-api",
    sub: victim.userId,
    tid: victim.tenant,
    role: victim.role,
    sid: victimSid,
    jti: crypto.randomUUID(),
    iat,
    exp: iat + ttlSeconds,
  };
}

/** A real token from the service, for the victim's session. */
async function issued(): Promise<string> {
  const { token } = await ctx.deps.security.tokens.issue({
    sub: victim.userId,
    tid: victim.tenant,
    role: victim.role,
    sid: victimSid,
  });
  return token;
}

/**
 * A JWS over `claims` (merged into genuine ones; `undefined` drops a claim) or a raw `payload`,
 * with `header` merged into ours, signed with OUR current private key unless `key` is given.
 */
async function forge(
  options: {
    header?: Record<string, unknown>;
    claims?: Record<string, unknown>;
    payload?: string;
    key?: CryptoKey | Uint8Array;
  } = {},
): Promise<string> {
  const ours = ourKey();
  const header = { alg: ours.alg, kid: ours.kid, typ: "at+jwt", ...options.header } as CompactJWSHeaderParameters;
  const payload = options.payload ?? JSON.stringify({ ...genuineClaims(), ...options.claims });
  return new CompactSign(encoder.encode(payload)).setProtectedHeader(header).sign(options.key ?? ours.privateKey);
}

/** `header.payload.signature` put together by hand, for what no library will sign. */
function unsigned(header: Record<string, unknown>, signature: string): string {
  return `${b64(header)}.${b64(genuineClaims())}.${signature}`;
}

/** Replaces one segment of a token, keeping the others byte for byte. */
function withSegment(token: string, index: number, segment: string): string {
  const parts = token.split(".");
  parts[index] = segment;
  return parts.join(".");
}

function tamperClaims(token: string, changes: Record<string, unknown>): string {
  const claims = decodeJwt(token);
  return withSegment(token, 1, b64({ ...claims, ...changes }));
}

/** Same signature bytes, different text: the final character's unused low bits set. */
function nonCanonicalSignature(token: string): string {
  const signature = token.split(".")[2] ?? "";
  const last = BASE64URL.indexOf(signature.at(-1) ?? "");
  const changed = `${signature.slice(0, -1)}${BASE64URL[last ^ 1]}`;
  if (changed === signature || !Buffer.from(changed, "base64url").equals(Buffer.from(signature, "base64url"))) {
    throw new Error("the signature has no unused bits to flip");
  }
  return withSegment(token, 2, changed);
}

async function jwksX(): Promise<string> {
  const res = await ctx.req("GET", "/.well-known/jwks.json");
  const { keys } = (await res.json()) as { keys: { kid: string; x: string }[] };
  const x = keys.find((key) => key.kid === ourKey().kid)?.x;
  if (!x) throw new Error("the current key is not in the JWKS");
  return x;
}

const me = (authorization: string) => ctx.req("GET", "/v1/auth/me", { headers: { authorization } });

const NOT_WELL_FORMED = "the token is not a well-formed JWT";
const ALG_NOT_ALLOWED = "the token algorithm is not allowed";
const FORBIDDEN_HEADER = "the token header carries a forbidden parameter";
const UNKNOWN_KEY = "the token names no known key";
const BAD_SIGNATURE = "the token signature is invalid";
const WRONG_TYPE = "the token type must be at+jwt";
const NOT_INTEGERS = '"iat" and "exp" must be integers';
const EXPIRED = "the token has expired";
const BAD_SCHEME = "the Authorization header must be 'Bearer <token>'";

/** [what the attacker sends, the reason we must give, the Authorization header value]. */
type AttackCase = [name: string, reason: string, authorization: () => Promise<string> | string];

const algNone: AttackCase[] = ["none", "None", "NONE", "nOnE"].flatMap((alg): AttackCase[] => [
  [`alg "${alg}" with an empty signature`, NOT_WELL_FORMED, () => bearer(unsigned({ alg, typ: "at+jwt" }, ""))],
  [
    `alg "${alg}" with a non-empty signature`,
    ALG_NOT_ALLOWED,
    () => bearer(unsigned({ alg, kid: ourKey().kid, typ: "at+jwt" }, b64("signature"))),
  ],
]);

const cases: AttackCase[] = [
  ...algNone,

  // Algorithm confusion: our public key as an HMAC secret.
  [
    "HS256 keyed with the raw bytes of our public key",
    ALG_NOT_ALLOWED,
    async () =>
      bearer(await forge({ header: { alg: "HS256" }, key: new Uint8Array(Buffer.from(await jwksX(), "base64url")) })),
  ],
  [
    "HS256 keyed with our public key's base64url text",
    ALG_NOT_ALLOWED,
    async () => bearer(await forge({ header: { alg: "HS256" }, key: encoder.encode(await jwksX()) })),
  ],

  // A genuine signature over changed claims.
  [
    "a genuine token with role changed to admin",
    BAD_SIGNATURE,
    async () => bearer(tamperClaims(await issued(), { role: "admin" })),
  ],
  [
    "a genuine token moved to another tenant",
    BAD_SIGNATURE,
    async () => bearer(tamperClaims(await issued(), { tid: "globex" })),
  ],
  [
    "a token signed by an attacker key under our kid",
    BAD_SIGNATURE,
    async () => bearer(await forge({ key: attacker.privateKey })),
  ],
  ["a stripped signature (header.payload.)", NOT_WELL_FORMED, async () => bearer(withSegment(await issued(), 2, ""))],
  ["a two-segment token", NOT_WELL_FORMED, async () => bearer((await issued()).split(".").slice(0, 2).join("."))],

  // Headers that let the token pick its own key.
  [
    "an embedded jwk header",
    FORBIDDEN_HEADER,
    async () => bearer(await forge({ header: { jwk: attackerJwk }, key: attacker.privateKey })),
  ],
  [
    "a jku header",
    FORBIDDEN_HEADER,
    async () =>
      bearer(await forge({ header: { jku: "https://attacker.example/jwks.json" }, key: attacker.privateKey })),
  ],
  [
    "an x5u header",
    FORBIDDEN_HEADER,
    async () => bearer(await forge({ header: { x5u: "https://attacker.example/cert.pem" }, key: attacker.privateKey })),
  ],
  [
    "an x5c header",
    FORBIDDEN_HEADER,
    async () => bearer(await forge({ header: { x5c: [attackerSpki] }, key: attacker.privateKey })),
  ],

  // kid is only a lookup into our ring.
  ["a kid with path traversal", UNKNOWN_KEY, async () => bearer(await forge({ header: { kid: "../../etc/passwd" } }))],
  ["a kid with SQL injection", UNKNOWN_KEY, async () => bearer(await forge({ header: { kid: "' OR 1=1 --" } }))],
  ["an empty kid", UNKNOWN_KEY, async () => bearer(await forge({ header: { kid: "" } }))],
  ["a very long kid", UNKNOWN_KEY, async () => bearer(await forge({ header: { kid: "a".repeat(1500) } }))],
  ["a well-formed unknown kid", UNKNOWN_KEY, async () => bearer(await forge({ header: { kid: "0000000000000000" } }))],
  ["a kid that is a number", UNKNOWN_KEY, async () => bearer(await forge({ header: { kid: 1234567890123456 } }))],
  ["no kid", UNKNOWN_KEY, async () => bearer(await forge({ header: { kid: undefined } }))],

  // Signed with our key; only one claim or header is wrong.
  ["a wrong iss", 'the "iss" claim check failed', async () => bearer(await forge({ claims: { iss: "evil" } }))],
  ["a missing iss", 'the "iss" claim missing', async () => bearer(await forge({ claims: { iss: undefined } }))],
  ["a wrong aud", 'the "aud" claim check failed', async () => bearer(await forge({ claims: { aud: "other-api" } }))],
  ["a missing aud", 'the "aud" claim missing', async () => bearer(await forge({ claims: { aud: undefined } }))],
  ["typ JWT", WRONG_TYPE, async () => bearer(await forge({ header: { typ: "JWT" } }))],
  ["no typ", WRONG_TYPE, async () => bearer(await forge({ header: { typ: undefined } }))],
  [
    "a role we do not have",
    'the "role" claim is invalid',
    async () => bearer(await forge({ claims: { role: "root" } })),
  ],
  ["a payload that is not JSON", "the token is not a valid JWT", async () => bearer(await forge({ payload: "{nope" }))],
  [
    "a header that is not JSON",
    "the token header is not valid JSON",
    async () => bearer(withSegment(await issued(), 0, b64("{nope"))),
  ],

  // The refresh token is not an access token.
  [
    "the refresh token",
    "this is a refresh token: exchange it at POST /v1/auth/token (grant_type=refresh_token)",
    () => bearer(victim.refreshToken),
  ],

  [
    "client_id as a number",
    'the "client_id" claim is invalid',
    async () => bearer(await forge({ claims: { client_id: 7 } })),
  ],
  [
    "client_id empty",
    'the "client_id" claim is invalid',
    async () => bearer(await forge({ claims: { client_id: "" } })),
  ],
  // Time claims of the wrong type or in the wrong place.
  ["exp as a string", 'the "exp" claim invalid', async () => bearer(await forge({ claims: { exp: "9999999999" } }))],
  [
    "exp as a float",
    NOT_INTEGERS,
    async () => bearer(await forge({ claims: { exp: nowSeconds() + ttlSeconds + 0.5 } })),
  ],
  ["exp as an object", 'the "exp" claim invalid', async () => bearer(await forge({ claims: { exp: { $gt: 0 } } }))],
  [
    "exp of 1e400 (Infinity once parsed)",
    NOT_INTEGERS,
    async () =>
      bearer(
        await forge({ payload: JSON.stringify({ ...genuineClaims(), exp: 0 }).replace('"exp":0', '"exp":1e400') }),
      ),
  ],
  ["iat as a string", 'the "iat" claim invalid', async () => bearer(await forge({ claims: { iat: "0" } }))],
  ["iat as a float", NOT_INTEGERS, async () => bearer(await forge({ claims: { iat: nowSeconds() + 0.5 } }))],
  ["iat as an object", 'the "iat" claim invalid', async () => bearer(await forge({ claims: { iat: {} } }))],
  ["a missing iat", 'the "iat" claim missing', async () => bearer(await forge({ claims: { iat: undefined } }))],
  ["nbf as a string", 'the "nbf" claim invalid', async () => bearer(await forge({ claims: { nbf: "0" } }))],
  ["nbf as an object", 'the "nbf" claim invalid', async () => bearer(await forge({ claims: { nbf: [] } }))],
  ["a missing exp", 'the "exp" claim missing', async () => bearer(await forge({ claims: { exp: undefined } }))],
  [
    "exp in the header only",
    'the "exp" claim missing',
    async () => bearer(await forge({ header: { exp: nowSeconds() + ttlSeconds }, claims: { exp: undefined } })),
  ],
  [
    "nbf two minutes ahead (beyond the 30 s skew)",
    'the "nbf" claim check failed',
    async () => bearer(await forge({ claims: { nbf: nowSeconds() + 120 } })),
  ],
  [
    "an expired token (past exp + 30 s skew)",
    EXPIRED,
    async () => {
      const token = await issued();
      ctx.clock.advance((ttlSeconds + 31) * 1000);
      return bearer(token);
    },
  ],
  [
    "an expired token that was accepted (and cached) while valid",
    EXPIRED,
    async () => {
      const token = await issued();
      expect((await me(bearer(token))).status).toBe(200);
      ctx.clock.advance((ttlSeconds + 31) * 1000);
      return bearer(token);
    },
  ],

  // Size and encoding.
  [
    "a token over 4096 characters",
    "the token is too large",
    async () => bearer(await forge({ claims: { pad: "x".repeat(4096) } })),
  ],
  ["base64 padding (=)", NOT_WELL_FORMED, async () => bearer(`${await issued()}==`)],
  [
    "base64 + and / instead of - and _",
    NOT_WELL_FORMED,
    async () => {
      // Six "~" bytes always contain one aligned 3-byte group, which encodes to "fn5-".
      const token = await forge({ claims: { note: "~~~~~~" } });
      const standard = token.replace(/-/g, "+").replace(/_/g, "/");
      if (standard === token) throw new Error("the token has no - or _ to swap");
      return bearer(standard);
    },
  ],
  [
    "a signature whose last character has non-zero unused bits",
    NOT_WELL_FORMED,
    async () => bearer(nonCanonicalSignature(await issued())),
  ],

  // The Authorization header itself.
  ["a bearer value with a space inside", BAD_SCHEME, async () => `Bearer ${(await issued()).replace(".", ". ")}`],
  ["a tab after Bearer", BAD_SCHEME, async () => `Bearer\t${await issued()}`],
  ["Bearer without a token", BAD_SCHEME, () => "Bearer"],
];

describe("JWT attacks on GET /v1/auth/me", () => {
  test("a token forged with our key and genuine claims should be accepted, so each attack breaks one thing", async () => {
    const res = await me(bearer(await forge()));
    expect(res.status).toBe(200);
    expect((await res.json()).sub).toBe(victim.userId);
  });

  test("should accept more than one space after Bearer, as RFC 6750's 1*SP allows", async () => {
    const res = await me(`Bearer   ${await issued()}`);
    expect(res.status).toBe(200);
    expect((await res.json()).sub).toBe(victim.userId);
  });

  test("should accept a token 29 s past exp (within the skew)", async () => {
    const token = await issued();
    ctx.clock.advance((ttlSeconds + 29) * 1000);
    expect((await me(bearer(token))).status).toBe(200);
  });

  test.each(cases)("should refuse %s with 401 and the reason", async (_name, reason, authorization) => {
    const res = await me(await authorization());
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe(
      `Bearer realm="warden", error="invalid_token", error_description="${reason.replace(/"/g, "'")}"`,
    );
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const body = await res.json();
    expect(body).toMatchObject({
      type: "urn:warden:problem:invalid-token",
      title: "Unauthorized",
      status: 401,
      detail: reason,
    });
  });

  const noCredentials: [string, () => string | Promise<string>][] = [
    ["the Basic scheme", () => `Basic ${btoa("admin@acme.test:hunter2")}`],
    ["a valid token under the Basic scheme", async () => `Basic ${await issued()}`],
    ["an empty Authorization header", () => ""],
  ];
  test.each(noCredentials)(
    "should answer %s as no credentials: 401 with the bare challenge (RFC 6750 §3.1)",
    async (_name, authorization) => {
      const res = await me(await authorization());
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="warden"');
      expect(await res.json()).toMatchObject({ type: "urn:warden:problem:missing-token", status: 401 });
    },
  );

  test("should keep answering valid tokens after the attacks, without a single server error", async () => {
    const fresh = await login(ctx, victim);
    const res = await me(fresh.auth.authorization ?? "");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ sub: victim.userId, tenant: "acme", role: "viewer" });
    expect(ctx.logs.filter((line) => line.level === "error")).toEqual([]);
  });
});
