import { createTestContext, type TestContext } from "./app";
import { waitFor } from "./ports";
import { startRedis, type TestRedis } from "./redis";

export type FeedbackStoreName = "SQLite" | "Redis";

/** A test app whose feedback lives in SQLite, or in a Redis of its own (started and ready). */
export async function feedbackContext(
  store: FeedbackStoreName,
  env: Record<string, string>,
): Promise<{ ctx: TestContext; close(): Promise<void> }> {
  const redis: TestRedis | undefined = store === "Redis" ? await startRedis() : undefined;
  const ctx = await createTestContext({ ...env, ...(redis ? { REDIS_URL: redis.url } : {}) });
  if (redis) await waitFor(() => ctx.deps.redis?.status === "ready", 5000, "redis client ready");
  return {
    ctx,
    async close() {
      await ctx.close();
      await redis?.stop();
    },
  };
}
