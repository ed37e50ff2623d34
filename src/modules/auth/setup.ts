import type { Db } from "../../../db/client";
import type { Config } from "../../config";
import type { Clock } from "../../lib/clock";
import type { Logger } from "../../lib/logger";
import type { Worker } from "../../lib/worker";
import { WriteBatcher } from "../../lib/write-batcher";
import { IdentityService } from "../admin/identity";
import type { AuditHook } from "../audit/hook";
import { AuditTrail } from "../audit/trail";
import { RevocationService } from "../revocation/service";
import { AccessTokens, tokenCoverMs } from "./access-tokens";
import { KeyRing, type KeyRingOptions } from "./key-ring";
import { type ServerSecrets, serverSecretsFor } from "./server-secrets";
import { AuthService } from "./service";
import { SessionService } from "./sessions";

export interface Security {
  readonly secrets: ServerSecrets;
  readonly keyRing: KeyRing;
  readonly revocation: RevocationService;
  readonly tokens: AccessTokens;
  readonly identity: IdentityService;
  readonly auth: AuthService;
  readonly sessions: SessionService;
  readonly audit: AuditHook;
  /** The key the audit chain's HMACs use (AUDIT_KEY, or derived from the master key). */
  readonly auditKey: Uint8Array;
  readonly keyRingOptions: KeyRingOptions;
  /** The one group-commit queue for writes on request paths. */
  readonly batcher: WriteBatcher;
}

export const KEY_RING_RELOAD_MS = 10_000;
const REVOCATION_PURGE_MS = 60_000;
/** How often each process applies revocations other processes on the database committed. */
export const REVOCATION_POLL_MS = 250;

/** Everything identity needs, opened once per process: key ring, revocation maps, services. */
export async function openSecurity(deps: { config: Config; db: Db; clock: Clock }): Promise<Security> {
  const { config, db, clock } = deps;
  const secrets = await serverSecretsFor(config);
  const coverMs = tokenCoverMs(config.jwt);
  const keyRingOptions: KeyRingOptions = {
    db,
    sealingKey: secrets.sealingKey,
    alg: config.jwt.alg,
    clock,
    retireAfterMs: coverMs,
  };
  const keyRing = await KeyRing.open(keyRingOptions);
  const batcher = new WriteBatcher(db.$client);
  const revocation = new RevocationService(db, clock, coverMs, batcher);
  revocation.load();
  const tokens = new AccessTokens(keyRing, revocation, config.jwt, clock);
  const identity = new IdentityService(db, clock, secrets.apiKeyPepper);
  const auditKey = secrets.auditKey;
  const audit = new AuditTrail(db, auditKey, clock);
  audit.assertHeadKey();
  audit.recordHeadIfMissing();
  audit.batchedBy(batcher);
  const sessions = new SessionService({ db, clock, queries: identity.queries, tokens, revocation, audit });
  const auth = new AuthService({ db, clock, config, identity, tokens, revocation, audit, batcher, sessions });
  return { secrets, keyRing, revocation, tokens, identity, auth, sessions, audit, auditKey, keyRingOptions, batcher };
}

/** Background upkeep: pick up key rotations made by other processes, purge expired revocations. */
export function startSecurityWorkers(security: Security, log: Logger): Worker {
  const reload = setInterval(() => {
    security.keyRing.reload().catch((error: Error) => log.error({ err: error }, "key ring reload failed"));
  }, KEY_RING_RELOAD_MS);
  // A revocation made by another process on this database takes effect here within a poll.
  const poll = setInterval(() => {
    try {
      security.revocation.poll();
    } catch (error) {
      log.error({ err: error }, "revocation poll failed");
    }
  }, REVOCATION_POLL_MS);
  const purge = setInterval(() => {
    try {
      security.revocation.purgeExpired();
      security.sessions
        .purgeExpired()
        .catch((error: Error) => log.error({ err: error }, "purge of expired sessions failed"));
    } catch (error) {
      log.error({ err: error }, "purge of expired revocations failed");
    }
  }, REVOCATION_PURGE_MS);
  return {
    name: "security-upkeep",
    async stop() {
      clearInterval(reload);
      clearInterval(poll);
      clearInterval(purge);
    },
  };
}
