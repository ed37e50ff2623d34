import { Elysia } from "elysia";
import { healthResponse, readinessResponse } from "./model";
import type { ReadinessProbe } from "./service";

const startedAt = performance.now();

export const healthModule = (deps: { readiness: ReadinessProbe; version: string }) =>
  new Elysia({ name: "health", tags: ["operations"] })
    .get(
      "/health",
      () => ({
        status: "ok" as const,
        version: deps.version,
        uptime_seconds: Math.round((performance.now() - startedAt) / 10) / 100,
      }),
      {
        response: healthResponse,
        detail: { summary: "Liveness", description: "200 while the process is up and serving." },
      },
    )
    .get(
      "/ready",
      async ({ set }) => {
        const readiness = await deps.readiness.check();
        set.headers["cache-control"] = "no-store";
        if (readiness.status === "not_ready") set.status = 503;
        return readiness;
      },
      {
        response: { 200: readinessResponse, 503: readinessResponse },
        detail: {
          summary: "Readiness",
          description:
            "503 when SQLite is not writable, and from the moment a shutdown begins (`detail` says so) while in-flight requests drain. With Redis configured but unreachable the service keeps serving on its fallbacks and reports `degraded` with 200; so it does while feedback waits spooled in SQLite (a Redis that answers but refuses writes), its `checks.redis.detail` saying how many entries. One check answers for up to a second: a flood of probes costs one SQLite write and one Redis PING a second.",
        },
      },
    );
