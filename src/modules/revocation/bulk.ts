import type { Role } from "../../../db/schema";
import { HttpProblem } from "../../lib/problem";
import { constantTimeEqual, hmacHex, randomToken } from "../../lib/secrets";

export const CONFIRM_TTL_MS = 5 * 60_000;

export interface BulkRequest {
  readonly tenantId: string;
  readonly scope: "tenant" | "role";
  readonly role?: Role;
  /** Who previewed it: only they may confirm. */
  readonly actor: string;
  readonly expiresAt: number;
}

/** A confirm token: the previewed request, signed, valid for five minutes; single use is checked against the audit trail. */
export function signConfirmToken(key: Uint8Array, request: BulkRequest): string {
  // The nonce makes every preview's token distinct, so single use means this preview only.
  const payload = Buffer.from(JSON.stringify({ ...request, nonce: randomToken(9) })).toString("base64url");
  return `${payload}.${hmacHex(key, payload)}`;
}

export function openConfirmToken(
  key: Uint8Array,
  token: string,
  now: number,
  expected: { tenantId: string; actor: string },
): BulkRequest {
  // Exactly the two parts signed: single use is kept by the token's hash, and a third part
  // (`<token>.x`) would otherwise verify as a token of its own.
  const parts = token.split(".");
  const [payload = "", signature = ""] = parts.length === 2 ? parts : [];
  const invalid = new HttpProblem(
    422,
    "invalid-confirm-token",
    "The confirm token is invalid, expired, or not yours.",
    {
      errors: [{ in: "body", field: "confirm_token", message: "invalid or expired" }],
    },
  );
  if (!payload || !constantTimeEqual(hmacHex(key, payload), signature)) throw invalid;
  let request: BulkRequest;
  try {
    request = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as BulkRequest;
  } catch {
    throw invalid;
  }
  if (request.expiresAt <= now || request.tenantId !== expected.tenantId || request.actor !== expected.actor)
    throw invalid;
  return request;
}
