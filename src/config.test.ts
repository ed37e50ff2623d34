import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "./config";

describe("loadConfig", () => {
  test("should give the documented defaults for an empty environment", () => {
    const config = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.dataDir).toBe("./data");
    expect(config.redisUrl).toBeUndefined();
    expect(config.jwt.alg).toBe("EdDSA");
    expect(config.jwt.accessTokenTtlSeconds).toBe(900);
    expect(config.jwt.refreshTokenTtlSeconds).toBe(30 * 86_400);
    expect(config.feedbackTtlSeconds).toBe(604_800);
    expect(config.webhook.retryScheduleSeconds).toEqual([0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
    expect(config.webhook.allowPrivate).toBe(true);
  });

  test("should parse durations, lists and URLs", () => {
    const config = loadConfig({
      PORT: "9000",
      ACCESS_TOKEN_TTL: "5m",
      REFRESH_TOKEN_TTL: "7d",
      REDIS_URL: "redis://127.0.0.1:6380/2",
      CORS_ORIGINS: "https://a.example.com, http://localhost:3000",
      WEBHOOK_RETRY_SCHEDULE: "0,1,1,1",
      JWT_ALG: "ES256",
      TRUSTED_PROXIES: "10.0.0.0/8, ::1,192.0.2.7",
    });
    expect(config.port).toBe(9000);
    expect(config.notifications.retentionDays).toBe(90);
    expect(config.jwt.accessTokenTtlSeconds).toBe(300);
    expect(config.jwt.refreshTokenTtlSeconds).toBe(7 * 86_400);
    expect(config.redisUrl).toBe("redis://127.0.0.1:6380/2");
    expect(config.corsOrigins).toEqual(["https://a.example.com", "http://localhost:3000"]);
    expect(config.webhook.retryScheduleSeconds).toEqual([0, 1, 1, 1]);
    expect(config.jwt.alg).toBe("ES256");
    expect(config.http.trustedProxies).toEqual(["10.0.0.0/8", "::1", "192.0.2.7"]);
    expect(loadConfig({ HOST: "[::1]" }).host).toBe("::1");
  });

  test("should be frozen all the way down", () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.jwt)).toBe(true);
    expect(Object.isFrozen(config.corsOrigins)).toBe(true);
  });

  test.each([
    ["PORT", "abc"],
    ["PORT", "70000"],
    ["PORT", "-1"],
    ["REDIS_URL", "notaurl"],
    ["REDIS_URL", "http://localhost:6379"],
    ["LOG_LEVEL", "loud"],
    ["NODE_ENV", "staging"],
    ["JWT_ALG", "HS256"],
    ["ACCESS_TOKEN_TTL", "15 minutes"],
    ["ACCESS_TOKEN_TTL", "0"],
    ["ACCESS_TOKEN_TTL", "9999999999999"],
    ["ACCESS_TOKEN_TTL", "25h"],
    ["REFRESH_TOKEN_TTL", "100000000d"],
    ["REFRESH_TOKEN_TTL", "366d"],
    ["FEEDBACK_TTL_SECONDS", "1.5"],
    ["CORS_ORIGINS", "*"],
    ["CORS_ORIGINS", "https://a.example.com/path"],
    ["RATE_LIMIT_ENABLED", "maybe"],
    ["TRUSTED_PROXIES", "proxy.internal"],
    ["TRUSTED_PROXIES", "10.0.0.0/33"],
    ["TRUSTED_PROXIES", "10.0.0.0/8/1"],
    ["TRUSTED_PROXIES", "::1/129"],
    ["TRUSTED_PROXIES", "10.0.0.1,"],
    ["WEBHOOK_RETRY_SCHEDULE", "0,soon"],
    ["WEBHOOK_RETRY_SCHEDULE", "5,,10"],
    ["WEBHOOK_RETRY_SCHEDULE", "0x10,1e2"],
    ["WEBHOOK_RETRY_SCHEDULE", "0.5"],
    ["HTTP_BODY_LIMIT_BYTES", "1"],
    ["AUDIT_RETENTION_DAYS", "-3"],
    ["NOTIFICATION_RETENTION_DAYS", "ninety"],
    ["MASTER_KEY", "dG9vIHNob3J0"],
  ])("should reject %s=%p naming the variable", (name, value) => {
    let caught: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe(name);
    expect((caught as ConfigError).message).toStartWith(`${name}: expected `);
  });

  test("should take token lifetimes up to their documented bounds, and say the bound past them", () => {
    const config = loadConfig({ ACCESS_TOKEN_TTL: "24h", REFRESH_TOKEN_TTL: "365d" });
    expect(config.jwt.accessTokenTtlSeconds).toBe(86_400);
    expect(config.jwt.refreshTokenTtlSeconds).toBe(365 * 86_400);
    expect(() => loadConfig({ ACCESS_TOKEN_TTL: "86401" })).toThrow(
      "ACCESS_TOKEN_TTL: expected a positive duration up to 24h, such as 900, 15m or 12h",
    );
    expect(() => loadConfig({ REFRESH_TOKEN_TTL: "9999999999999" })).toThrow(
      "REFRESH_TOKEN_TTL: expected a positive duration up to 365d",
    );
  });

  test("should refuse production without an audit key", () => {
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow("AUDIT_KEY");
    expect(() => loadConfig({ NODE_ENV: "production", AUDIT_KEY: "short" })).toThrow("AUDIT_KEY");
    const config = loadConfig({ NODE_ENV: "production", AUDIT_KEY: "k".repeat(32) });
    expect(config.env).toBe("production");
    expect(config.webhook.allowPrivate).toBe(false);
  });
});
