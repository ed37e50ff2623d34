import { Elysia } from "elysia";
import { healthResponse, readinessResponse } from "./model";
import { checkReadiness, type HealthDeps } from "./service";

const startedAt = performance.now();

export const healthModule = (deps: HealthDeps & { version: string }) =>
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
        const readiness = await checkReadiness(deps);
        set.headers["cache-control"] = "no-store";
        if (readiness.status === "not_ready") set.status = 503;
        return readiness;
      },
      {
        response: { 200: readinessResponse, 503: readinessResponse },
        detail: {
          summary: "Readiness",
          description:
            "503 when SQLite is not writable. With Redis configured but unreachable the service keeps serving on its fallbacks and reports `degraded` with 200.",
        },
      },
    );
