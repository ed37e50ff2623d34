import { Elysia } from "elysia";
import type { Redis } from "ioredis";
import type { Db } from "../db/client";
import pkg from "../package.json";
import type { Config } from "./config";
import type { Clock } from "./lib/clock";
import { installStrictFormats } from "./lib/formats";
import type { Logger } from "./lib/logger";
import { adminModule } from "./modules/admin";
import { AdminService } from "./modules/admin/service";
import { auditModule } from "./modules/audit";
import type { ChainVerifier } from "./modules/audit/verifier";
import { authModule } from "./modules/auth";
import type { Security } from "./modules/auth/setup";
import { dashboard } from "./modules/dashboard";
import { feedbackModule } from "./modules/feedback";
import type { FeedbackService } from "./modules/feedback/service";
import { healthModule } from "./modules/health";
import type { ReadinessProbe } from "./modules/health/service";
import { notificationsModule } from "./modules/notifications";
import { NotificationService } from "./modules/notifications/service";
import { revocationModule } from "./modules/revocation";
import { webhooksModule } from "./modules/webhooks";
import type { Webhooks } from "./modules/webhooks/setup";
import { bodyGuard } from "./plugins/body-guard";
import { docs } from "./plugins/docs";
import { errors, type MethodIndex, routeMethodIndex } from "./plugins/errors";
import { type LeanHost, leanFetch } from "./plugins/lean-routes";
import { type Metrics, metricsPlugin, zeroServerErrors } from "./plugins/metrics";
import { queryGuard } from "./plugins/query-guard";
import { rateLimit } from "./plugins/rate-limit";
import type { RateLimiter } from "./plugins/rate-limiter";
import { requestContext } from "./plugins/request-context";
import { requestGuards } from "./plugins/request-guards";
import { adapterWithDefaultHeaders } from "./plugins/response-adapter";
import type { RouteEntry } from "./plugins/route-index";
import { SECURITY_HEADERS, securityHeaders } from "./plugins/security-headers";

export const VERSION: string = pkg.version;

export interface AppDeps {
  config: Config;
  db: Db;
  redis: Redis | undefined;
  log: Logger;
  clock: Clock;
  metrics: Metrics;
  readiness: ReadinessProbe;
  security: Security;
  webhooks: Webhooks;
  auditVerifier: ChainVerifier;
  feedback: FeedbackService;
  /** Undefined when RATE_LIMIT_ENABLED=false. */
  rateLimiter: RateLimiter | undefined;
}

/**
 * The whole request pipeline, top to bottom: request id + access log → security headers/CORS →
 * problem+json errors → header/body guards → metrics → rate limit (after routing, before
 * validation and auth) → docs → feature modules.
 */
export function createApp(deps: AppDeps) {
  installStrictFormats();
  // Built on first use and rebuilt if routes were added since, so it always sees the whole table.
  let index: { routes: number; methods: MethodIndex } | undefined;
  const methods: MethodIndex = {
    methodsFor(path) {
      if (index?.routes !== app.routes.length)
        index = { routes: app.routes.length, methods: routeMethodIndex(app.routes) };
      return index.methods.methodsFor(path);
    },
  };

  const admin = new AdminService(deps.db, deps.clock, deps.security);
  const notifications = new NotificationService(
    deps.db.$client,
    deps.clock,
    deps.security.batcher,
    deps.webhooks.endpoints,
    {
      dataMaxBytes: deps.config.notifications.dataMaxBytes,
      onAccepted: (deliveries) => {
        deps.metrics.notificationsCreated.inc();
        if (deliveries > 0) deps.webhooks.dispatcher.wake();
      },
    },
  );
  deps.security.identity.onUsersChanged(() => notifications.forgetUsers());
  const app = new Elysia({
    name: "warden",
    adapter: adapterWithDefaultHeaders(SECURITY_HEADERS),
    // By default Elysia looks for the path from the 12th character of the URL on, assuming a host
    // of four or more characters: `Host: api` would then route /health as "/" + what follows the
    // next slash, and /ab/metrics as /metrics. The server speaks plain HTTP, so after "http://".
    handler: { standardHostname: false },
  })
    .use(requestContext(deps.log))
    .use(securityHeaders(deps.config.corsOrigins))
    .use(errors({ log: deps.log, methods }))
    .use(requestGuards(deps.config.http, (): readonly RouteEntry[] => app.routes))
    .use(queryGuard((): readonly RouteEntry[] => app.routes))
    .use(bodyGuard((): readonly RouteEntry[] => app.routes))
    .use(metricsPlugin(deps.metrics))
    .use(deps.rateLimiter ? rateLimit(deps.rateLimiter, deps.security.tokens) : new Elysia({ name: "no-rate-limit" }))
    .use(docs(VERSION, (): readonly RouteEntry[] => app.routes))
    .use(dashboard())
    .use(healthModule({ readiness: deps.readiness, version: VERSION }))
    .use(authModule(deps.security, deps.rateLimiter))
    .use(adminModule({ ...deps, admin }))
    .use(revocationModule({ ...deps, admin }))
    .use(auditModule(deps))
    .use(notificationsModule({ ...deps, notifications }))
    .use(webhooksModule(deps))

    .use(feedbackModule(deps));
  zeroServerErrors(deps.metrics, app.routes);

  return app;
}

export type App = ReturnType<typeof createApp>;

/**
 * What Bun.serve calls: the routes declared lean (src/plugins/lean-routes.ts) served in front of
 * Elysia by the same pipeline pieces, everything else by `app`. HTTP_LEAN_PATH=false hands
 * every request to Elysia.
 */
export function appFetch(app: LeanHost, deps: AppDeps): (request: Request) => Response | Promise<Response> {
  if (!deps.config.http.leanPath) return (request) => app.fetch(request);
  return leanFetch(app, {
    corsOrigins: deps.config.corsOrigins,
    limits: deps.config.http,
    log: deps.log,
    metrics: deps.metrics,
    tokens: deps.security.tokens,
    audit: deps.security.audit,
    rateLimiter: deps.rateLimiter,
  });
}
