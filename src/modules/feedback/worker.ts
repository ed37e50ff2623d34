import type { Redis } from "ioredis";
import type { Logger } from "../../lib/logger";
import type { Worker } from "../../lib/worker";
import type { FeedbackService } from "./service";

const REPLAY_EVERY_MS = 1000;
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
      await running;
    },
  };
}
