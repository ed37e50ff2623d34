import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from "jose";
import { ROLES, type Role } from "../../../db/schema";
import type { Config } from "../../config";
import type { Clock } from "../../lib/clock";
import { ulid } from "../../lib/secrets";
import type { RevocationService } from "../revocation/service";
import type { KeyRing } from "./key-ring";

export const ACCESS_TOKEN_TYPE = "at+jwt";
export const CLOCK_SKEW_SECONDS = 30;

/** How long any access token we issue can stay valid: what a revocation or a retired key must cover. */
export function tokenCoverMs(jwt: Config["jwt"]): number {
  return (jwt.accessTokenTtlSeconds + CLOCK_SKEW_SECONDS) * 1000;
}
/** Longer than any token we issue; anything bigger is rejected before it is parsed. */
const MAX_TOKEN_LENGTH = 4096;
const CACHE_LIMIT = 20_000;
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const KID_SHAPE = /^[0-9a-z]{16}$/;
const TENANT_SHAPE = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Header parameters that would let a token choose its own key, or change how it is processed. */
const FORBIDDEN_HEADERS = ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "zip", "enc"];

export interface AccessClaims {
  readonly sub: string;
  readonly tid: string;
  readonly role: Role;
  readonly sid: string;
  /** The API key a client-credentials session was opened with (RFC 9068's client_id); absent for password sessions. */
  readonly client_id?: string;
  readonly jti: string;
  /** Seconds. */
  readonly iat: number;
  /** Seconds. */
  readonly exp: number;
}

interface Verified extends AccessClaims {
  readonly kid: string;
}

/** Why a token was refused; the text goes to `WWW-Authenticate: … error_description`. */
export class InvalidToken extends Error {
  constructor(readonly description: string) {
    super(description);
    this.name = "InvalidToken";
  }
}

/**
 * Issues and verifies access tokens. Verification pins the algorithm to the key's, the issuer,
 * audience and `typ`, takes `kid` only as a lookup into our own ring, and caches the verified
 * claims by the whole token string (signature checks cost 60–100 µs with Ed25519). Expiry, key
 * retirement and revocation are checked on every call, cached or not.
 */
export class AccessTokens {
  private readonly cache = new Map<string, Verified>();

  constructor(
    private readonly ring: KeyRing,
    private readonly revocation: RevocationService,
    private readonly jwt: Config["jwt"],
    private readonly clock: Clock,
  ) {}

  async issue(subject: {
    sub: string;
    tid: string;
    role: Role;
    sid: string;
    client_id?: string;
  }): Promise<{ token: string; claims: AccessClaims }> {
    const iat = this.revocation.minimumIssuedAt(subject.sub, subject.tid);
    const claims: AccessClaims = {
      ...subject,
      jti: ulid(this.clock.now()),
      iat,
      exp: iat + this.jwt.accessTokenTtlSeconds,
    };
    const { kid, alg, privateKey } = this.ring.signingKey();
    const custom = { tid: claims.tid, role: claims.role, sid: claims.sid };
    const token = await new SignJWT(
      claims.client_id === undefined ? custom : { ...custom, client_id: claims.client_id },
    )
      .setProtectedHeader({ alg, kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(this.jwt.issuer)
      .setAudience(this.jwt.audience)
      .setSubject(claims.sub)
      .setJti(claims.jti)
      .setIssuedAt(claims.iat)
      .setExpirationTime(claims.exp)
      .sign(privateKey);
    return { token, claims };
  }

  /** The token's claims, or InvalidToken saying why not. */
  async verify(token: string): Promise<AccessClaims> {
    const cached = this.verifyCached(token);
    if (cached) return cached;
    const claims = await this.verifySignature(token);
    this.remember(token, claims);
    return this.checkLive(claims);
  }

  /**
   * Synchronous fast path for a token already verified once: its claims after the live checks
   * (or InvalidToken), or undefined when the signature still has to be checked with `verify`.
   * No promise, no await: on the hot path every microtask hop shows.
   */
  verifyCached(token: string): AccessClaims | undefined {
    const claims = this.cache.get(token);
    return claims === undefined ? undefined : this.checkLive(claims);
  }

  private checkLive(claims: Verified): AccessClaims {
    // Expired entries stay cached (the oldest go first anyway), so a client replaying a stale
    // token is refused without another signature check.
    if (claims.exp + CLOCK_SKEW_SECONDS <= this.clock.now() / 1000) throw new InvalidToken("the token has expired");
    if (!this.ring.verificationKey(claims.kid)) throw new InvalidToken("the signing key has been retired");
    if (this.revocation.isRevoked(claims)) throw new InvalidToken("the token has been revoked");
    return claims;
  }

  /** Signature and claims only, ignoring expiry: for RFC 7009 revocation of a token we issued. */
  async inspect(token: string): Promise<AccessClaims | undefined> {
    try {
      return await this.verifySignature(token, { ignoreExpiry: true });
    } catch {
      return undefined;
    }
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  private remember(token: string, claims: Verified): void {
    // Insertion order makes the first key the oldest: drop it rather than grow without bound.
    if (this.cache.size >= CACHE_LIMIT) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(token, claims);
  }

  private async verifySignature(token: string, options: { ignoreExpiry?: boolean } = {}): Promise<Verified> {
    if (token.length > MAX_TOKEN_LENGTH) throw new InvalidToken("the token is too large");
    if (!JWS_SHAPE.test(token) || !token.split(".").every(isCanonicalBase64url)) {
      if (token.startsWith("wdn_")) {
        throw new InvalidToken(
          "this is an API key: exchange it at POST /v1/auth/token (grant_type=client_credentials)",
        );
      }
      if (token.startsWith("wrt_")) {
        throw new InvalidToken(
          "this is a refresh token: exchange it at POST /v1/auth/token (grant_type=refresh_token)",
        );
      }
      throw new InvalidToken("the token is not a well-formed JWT");
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new InvalidToken("the token header is not valid JSON");
    }
    if (header.typ !== ACCESS_TOKEN_TYPE) throw new InvalidToken(`the token type must be ${ACCESS_TOKEN_TYPE}`);
    if (FORBIDDEN_HEADERS.some((name) => name in header))
      throw new InvalidToken("the token header carries a forbidden parameter");
    const kid = header.kid;
    if (typeof kid !== "string" || !KID_SHAPE.test(kid)) throw new InvalidToken("the token names no known key");
    let key = this.ring.verificationKey(kid);
    if (!key && (await this.ring.reloadForUnknownKid(kid))) key = this.ring.verificationKey(kid);
    if (!key) throw new InvalidToken("the token names no known key");
    if (header.alg !== key.alg) throw new InvalidToken("the token algorithm is not allowed");

    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key.publicKey, {
        algorithms: [key.alg],
        issuer: this.jwt.issuer,
        audience: this.jwt.audience,
        typ: ACCESS_TOKEN_TYPE,
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ["sub", "jti", "iat", "exp"],
        currentDate: new Date(options.ignoreExpiry ? 0 : this.clock.now()),
      }));
    } catch (error) {
      throw new InvalidToken(describeJoseError(error));
    }
    return { ...checkClaims(payload), kid };
  }
}

function isCanonicalBase64url(segment: string): boolean {
  return Buffer.from(segment, "base64url").toString("base64url") === segment;
}

function checkClaims(payload: Record<string, unknown>): AccessClaims {
  const { sub, tid, role, sid, client_id: clientId, jti, iat, exp } = payload;
  const text = (value: unknown) => typeof value === "string" && value.length > 0 && value.length <= 128;
  if (!text(sub) || !text(sid) || !text(jti)) throw new InvalidToken("the token claims are incomplete");
  if (clientId !== undefined && !text(clientId)) throw new InvalidToken('the "client_id" claim is invalid');
  if (typeof tid !== "string" || !TENANT_SHAPE.test(tid)) throw new InvalidToken('the "tid" claim is invalid');
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) {
    throw new InvalidToken('the "role" claim is invalid');
  }
  if (!Number.isInteger(iat) || !Number.isInteger(exp)) throw new InvalidToken('"iat" and "exp" must be integers');
  const claims = { sub, tid, role: role as Role, sid, jti, iat, exp } as AccessClaims;
  return clientId === undefined ? claims : { ...claims, client_id: clientId as string };
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "the token has expired";
  if (error instanceof errors.JWTClaimValidationFailed)
    return `the "${error.claim}" claim ${error.reason.replace(/_/g, " ")}`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return "the token signature is invalid";
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token algorithm is not allowed";
  return "the token is not a valid JWT";
}
