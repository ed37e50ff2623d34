import { t } from "elysia";

export const healthResponse = t.Object({
  status: t.Literal("ok"),
  version: t.String(),
  uptime_seconds: t.Number(),
});

const check = t.Object({
  status: t.Union([t.Literal("up"), t.Literal("down"), t.Literal("disabled")]),
  detail: t.Optional(t.String()),
  latency_ms: t.Optional(t.Number()),
});

export const readinessResponse = t.Object({
  status: t.Union([t.Literal("ready"), t.Literal("degraded"), t.Literal("not_ready")]),
  /** Why the service is not ready when no check says: it is shutting down. */
  detail: t.Optional(t.String()),
  checks: t.Object({ sqlite: check, redis: check }),
});

export type Readiness = typeof readinessResponse.static;
export type Check = typeof check.static;
