import type { Redis } from "ioredis";
import type { Logger } from "../../lib/logger";
import type { Worker } from "../../lib/worker";
import type { FeedbackService } from "./service";

const REPLAY_EVERY_MS = 1000;
/** A replay into a Redis that hangs waits for the client's command timeout (5 s); shutdown waits no longer than this for it. */
const STOP_WAIT_MS = 2000;
const SWEEP_EVERY_MS = 60_000;

/**
 * With Redis: replays the spool as soon as Redis is ready again (and retries every second while
 * anything is spooled). Without Redis: sweeps expired entries every minute.
 */
export function startFeedbackWorker(feedback: FeedbackService, redis: Redis | undefined, log: Logger): Worker {
  let running: Promise<void> | undefined;
  const replay = () => {
    running ??= feedback
      .replaySpool()
      .then(
        (replayed) => {
          if (replayed > 0) log.info({ replayed }, "spooled feedback replayed into redis");
        },
        (error: Error) => log.warn({ err: { message: error.message } }, "feedback replay interrupted; retrying"),
      )
      .finally(() => {
        running = undefined;
      });
  };
  const sweep = () => {
    try {
      const swept = feedback.sweepExpired();
      if (swept > 0) log.debug({ swept }, "expired feedback swept");
    } catch (error) {
      log.error({ err: error }, "feedback sweep failed");
    }
  };

  redis?.on("ready", replay);
  const timer = redis ? setInterval(replay, REPLAY_EVERY_MS) : setInterval(sweep, SWEEP_EVERY_MS);
  if (redis) replay();
  return {
    name: "feedback",
    async stop() {
      clearInterval(timer);
      redis?.off("ready", replay);
      // What it has not replayed stays spooled for the next start (or another process).
      await Promise.race([running, Bun.sleep(STOP_WAIT_MS)]);
    },
  };
}
