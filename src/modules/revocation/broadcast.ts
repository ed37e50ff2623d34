import type { Redis } from "ioredis";
import type { Logger } from "../../lib/logger";
import { RedisKeys } from "../../lib/redis-keys";
import { randomToken } from "../../lib/secrets";
import type { Worker } from "../../lib/worker";
import type { Revocation, RevocationService } from "./service";

export const REVOCATION_CHANNEL = RedisKeys.revocationChannel;

interface Envelope {
  origin: string;
  revocation: Revocation;
}

/**
 * Scale-out: every committed revocation is published on a Redis channel and applied by the
 * other nodes sharing the database, within milliseconds. A node that was cut off from Redis
 * reloads its maps from SQLite when the subscription comes back, so nothing missed stays missed.
 */
export function startRevocationBroadcast(redis: Redis, revocation: RevocationService, log: Logger): Worker {
  const origin = randomToken(9);
  const subscriber = redis.duplicate({ enableOfflineQueue: true });
  let connectedBefore = false;
  // Without a listener ioredis prints each reconnect failure to stderr, outside the JSON log; the
  // main connection already logs Redis going away.
  subscriber.on("error", () => {});

  revocation.onCommit((committed) => {
    const envelope: Envelope = { origin, revocation: committed };
    redis.publish(REVOCATION_CHANNEL, JSON.stringify(envelope)).catch((error: Error) => {
      log.warn(
        { err: { message: error.message } },
        "revocation not broadcast; other nodes catch up when Redis returns",
      );
    });
  });

  subscriber.on("message", (_channel: string, message: string) => {
    const envelope = parseEnvelope(message);
    if (envelope && envelope.origin !== origin) revocation.apply(envelope.revocation);
  });
  subscriber.on("ready", () => {
    if (connectedBefore) revocation.load();
    connectedBefore = true;
  });
  subscriber.subscribe(REVOCATION_CHANNEL).catch((error: Error) => {
    log.warn({ err: { message: error.message } }, "revocation channel not subscribed yet");
  });

  return {
    name: "revocation-broadcast",
    async stop() {
      subscriber.disconnect();
    },
  };
}

function parseEnvelope(message: string): Envelope | undefined {
  try {
    const envelope = JSON.parse(message) as Envelope;
    const r = envelope?.revocation;
    const valid =
      typeof envelope.origin === "string" &&
      r &&
      typeof r.tenantId === "string" &&
      typeof r.at === "number" &&
      typeof r.expiresAt === "number" &&
      ((r.kind === "token" && typeof r.jti === "string") ||
        (r.kind === "cutoff" && ["session", "user", "tenant"].includes(r.scope) && typeof r.subject === "string"));
    return valid ? envelope : undefined;
  } catch {
    return undefined;
  }
}
