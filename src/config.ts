import { isIP } from "node:net";
/**
 * Environment → typed, frozen Config. Every variable is parsed once at start-up;
 * a bad value throws ConfigError naming the variable and what was expected.
 */

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly expected: string,
    readonly got: string,
  ) {
    super(`${variable}: expected ${expected}, got ${JSON.stringify(got)}`);
    this.name = "ConfigError";
  }
}

export type JwtAlg = "EdDSA" | "ES256" | "RS256";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface Config {
  readonly env: "development" | "production" | "test";
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly redisUrl: string | undefined;
  readonly logLevel: LogLevel;
  readonly jwt: {
    readonly issuer: string;
    readonly audience: string;
    readonly alg: JwtAlg;
    readonly accessTokenTtlSeconds: number;
    readonly refreshTokenTtlSeconds: number;
    /** How long after its rotation a refresh token may be presented again (a retry), 0 = never. */
    readonly refreshReuseGraceSeconds: number;
  };
  readonly feedbackTtlSeconds: number;
  /** Live feedback entries one subject may hold; more is a 409. */
  readonly feedbackMaxPerSubject: number;
  readonly corsOrigins: readonly string[];
  readonly http: {
    readonly bodyLimitBytes: number;
    readonly headerLimitBytes: number;
    readonly shutdownGraceMs: number;
    /** How long shutdown keeps serving, not ready, before it stops accepting connections. */
    readonly shutdownDelayMs: number;
    /** Serve the routes declared lean (src/plugins/lean-routes.ts) in front of Elysia. */
    readonly leanPath: boolean;
    /** Addresses and CIDRs of the proxies whose X-Forwarded-For names the client. */
    readonly trustedProxies: readonly string[];
  };
  readonly rateLimit: {
    readonly enabled: boolean;
    readonly perMinute: number;
    readonly authPerMinute: number;
    /** Password-grant attempts per account (tenant + username) a minute, from every address together. */
    readonly accountPerMinute: number;
    /** How long a rate-limit decision waits for Redis before the in-process limiter decides instead. */
    readonly redisTimeoutMs: number;
  };
  readonly notifications: {
    /** Largest accepted `data` of a notification, as serialised JSON. */
    readonly dataMaxBytes: number;
    /** Days notifications, inbox rows and finished deliveries are kept; 0 keeps them forever. */
    readonly retentionDays: number;
  };
  readonly webhook: {
    readonly retryScheduleSeconds: readonly number[];
    readonly timeoutMs: number;
    readonly concurrency: number;
    readonly allowPrivate: boolean;
    /** Endpoints a tenant may have (not counting deleted ones). */
    readonly maxEndpointsPerTenant: number;
    /** Whether this process delivers; false for HTTP-only processes next to one that does. */
    readonly dispatch: boolean;
  };
  /** AUDIT_KEY's bytes: its text, or what follows `base64:` decoded. */
  readonly auditKey: Uint8Array | undefined;
  /** Days audit events stay in the database before they are archived to NDJSON; 0 keeps them forever. */
  readonly auditRetentionDays: number;
  /** 32+ bytes (base64) from which the API-key pepper and the key-ring sealing key derive; unset = DATA_DIR/master.key. */
  readonly masterKey: Uint8Array | undefined;
}

type Env = Record<string, string | undefined>;

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const DEFAULT_RETRY_SCHEDULE = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000];

function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === "" ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `an integer from ${min} to ${max}`, raw);
  }
  return value;
}

/** What a duration may look like, with its seconds: an example past a variable's limit would mislead. */
const DURATION_EXAMPLES: readonly [string, number][] = [
  ["900", 900],
  ["15m", 900],
  ["12h", 43_200],
  ["30d", 2_592_000],
];

/** "900", "15m", "30d" → seconds, from 1 s up to `max`. */
function duration(env: Env, name: string, fallback: number, max: { seconds: number; text: string }): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const match = /^(\d+)([smhd]?)$/.exec(raw);
  const seconds = match ? Number(match[1]) * (DURATION_UNITS[match[2] || "s"] ?? 1) : Number.NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0 || seconds > max.seconds) {
    const examples = DURATION_EXAMPLES.filter(([, within]) => within <= max.seconds).map(([text]) => text);
    throw new ConfigError(
      name,
      `a positive duration up to ${max.text}, such as ${examples.slice(0, -1).join(", ")} or ${examples.at(-1)}`,
      raw,
    );
  }
  return seconds;
}

// An expiry past a date's range (year 275760) cannot even be written: every answer naming it
// failed. Well short of that: an access token lives minutes, as clients refresh, so a day is
// already long; a refresh token asks for a login at least once a year.
const ACCESS_TOKEN_TTL_MAX = { seconds: 86_400, text: "24h" };
const REFRESH_TOKEN_TTL_MAX = { seconds: 365 * 86_400, text: "365d" };

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(name, "true or false", raw);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `one of ${allowed.join(", ")}`, raw);
  }
  return raw as T;
}

function redisUrl(env: Env): string | undefined {
  const raw = read(env, "REDIS_URL");
  if (raw === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || !["redis:", "rediss:"].includes(url.protocol) || url.hostname === "") {
    throw new ConfigError("REDIS_URL", "a redis:// or rediss:// URL with a host", raw);
  }
  return raw;
}

function origins(env: Env): string[] {
  const raw = read(env, "CORS_ORIGINS");
  if (raw === undefined) return [];
  return raw.split(",").map((entry) => {
    const origin = entry.trim();
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !["http:", "https:"].includes(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError("CORS_ORIGINS", "comma-separated origins such as https://app.example.com", origin);
    }
    return origin;
  });
}

function trustedProxies(env: Env): string[] {
  const raw = read(env, "TRUSTED_PROXIES");
  if (raw === undefined) return [];
  return raw.split(",").map((entry) => {
    const value = entry.trim();
    const [address = "", prefix, extra] = value.split("/");
    const version = isIP(address);
    const bits = version === 6 ? 128 : 32;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (version === 0 || !prefixOk || extra !== undefined) {
      throw new ConfigError("TRUSTED_PROXIES", "comma-separated addresses or CIDRs such as 10.0.0.0/8,::1", value);
    }
    return value;
  });
}

function retrySchedule(env: Env): number[] {
  const raw = read(env, "WEBHOOK_RETRY_SCHEDULE");
  if (raw === undefined) return DEFAULT_RETRY_SCHEDULE;
  const entries = raw.split(",").map((step) => step.trim());
  // Whole seconds, written as such: `5,,10` is not 5, 0, 10, nor `0x10` sixteen.
  if (entries.some((step) => !/^\d{1,9}$/.test(step))) {
    throw new ConfigError("WEBHOOK_RETRY_SCHEDULE", "comma-separated whole seconds such as 0,5,300", raw);
  }
  const steps = entries.map(Number);
  if (steps.length === 0) {
    throw new ConfigError("WEBHOOK_RETRY_SCHEDULE", "comma-separated non-negative seconds such as 0,5,300", raw);
  }
  return steps;
}

function masterKey(env: Env): Uint8Array | undefined {
  const raw = read(env, "MASTER_KEY");
  if (raw === undefined) return undefined;
  const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(raw) ? Buffer.from(raw, "base64") : Buffer.alloc(0);
  if (bytes.byteLength < 32)
    throw new ConfigError("MASTER_KEY", "at least 32 random bytes, base64-encoded", "(hidden)");
  return new Uint8Array(bytes);
}

function host(env: Env): string {
  const raw = read(env, "HOST") ?? "0.0.0.0";
  // An IPv6 address as a URL writes it, `[::1]`, is taken as the address inside.
  const bare = /^\[[0-9A-Fa-f:.]+\]$/.test(raw) ? raw.slice(1, -1) : raw;
  if (!/^[A-Za-z0-9.:-]+$/.test(bare)) throw new ConfigError("HOST", "a host name or IP address", raw);
  return bare;
}

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, "NODE_ENV", ["development", "production", "test"], "development");
  const production = nodeEnv === "production";
  const config: Config = {
    env: nodeEnv,
    host: host(env),
    port: integer(env, "PORT", 8080, 0, 65_535),
    dataDir: read(env, "DATA_DIR") ?? "./data",
    redisUrl: redisUrl(env),
    logLevel: oneOf(env, "LOG_LEVEL", LOG_LEVELS, "info"),
    jwt: {
      issuer: read(env, "JWT_ISSUER") ?? "warden",
      audience: read(env, "JWT_AUDIENCE") ?? "warden-api",
      alg: oneOf<JwtAlg>(env, "JWT_ALG", ["EdDSA", "ES256", "RS256"], "EdDSA"),
      accessTokenTtlSeconds: duration(env, "ACCESS_TOKEN_TTL", 900, ACCESS_TOKEN_TTL_MAX),
      refreshTokenTtlSeconds: duration(env, "REFRESH_TOKEN_TTL", 30 * 86_400, REFRESH_TOKEN_TTL_MAX),
      refreshReuseGraceSeconds: integer(env, "REFRESH_TOKEN_REUSE_GRACE_SECONDS", 0, 0, 60),
    },
    feedbackTtlSeconds: integer(env, "FEEDBACK_TTL_SECONDS", 604_800, 1, 31_536_000),
    feedbackMaxPerSubject: integer(env, "FEEDBACK_MAX_PER_SUBJECT", 10_000, 1, 1_000_000),
    corsOrigins: origins(env),
    http: {
      bodyLimitBytes: integer(env, "HTTP_BODY_LIMIT_BYTES", 1_048_576, 1024, 104_857_600),
      // Bun refuses headers past 16 KiB itself, with a bare 431: ours must bite first.
      headerLimitBytes: integer(env, "HTTP_HEADER_LIMIT_BYTES", 8192, 1024, 12_288),
      shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
      shutdownDelayMs: integer(env, "SHUTDOWN_DELAY_MS", 0, 0, 600_000),
      leanPath: boolean(env, "HTTP_LEAN_PATH", true),
      trustedProxies: trustedProxies(env),
    },
    rateLimit: {
      enabled: boolean(env, "RATE_LIMIT_ENABLED", true),
      perMinute: integer(env, "RATE_LIMIT_PER_MINUTE", 600, 1, 1_000_000),
      authPerMinute: integer(env, "RATE_LIMIT_AUTH_PER_MINUTE", 30, 1, 1_000_000),
      accountPerMinute: integer(env, "RATE_LIMIT_ACCOUNT_PER_MINUTE", 10, 1, 1_000_000),
      redisTimeoutMs: integer(env, "RATE_LIMIT_REDIS_TIMEOUT_MS", 50, 1, 10_000),
    },
    notifications: {
      dataMaxBytes: integer(env, "NOTIFICATION_DATA_MAX_BYTES", 16_384, 2, 1_048_576),
      retentionDays: integer(env, "NOTIFICATION_RETENTION_DAYS", 90, 0, 36_500),
    },
    webhook: {
      retryScheduleSeconds: retrySchedule(env),
      timeoutMs: integer(env, "WEBHOOK_TIMEOUT_MS", 10_000, 1, 300_000),
      concurrency: integer(env, "WEBHOOK_CONCURRENCY", 16, 1, 1024),
      allowPrivate: boolean(env, "WEBHOOK_ALLOW_PRIVATE", !production),
      maxEndpointsPerTenant: integer(env, "WEBHOOK_MAX_ENDPOINTS", 20, 1, 10_000),
      dispatch: boolean(env, "WEBHOOK_DISPATCH", true),
    },
    auditKey: auditKey(env),
    auditRetentionDays: integer(env, "AUDIT_RETENTION_DAYS", 0, 0, 36_500),
    masterKey: masterKey(env),
  };
  if (production) assertProductionSafe(config);
  return deepFreeze(config);
}

function assertProductionSafe(config: Config): void {
  if (!config.auditKey || config.auditKey.byteLength < 32) {
    throw new ConfigError(
      "AUDIT_KEY",
      "at least 32 characters (or base64: and 32 bytes) when NODE_ENV=production",
      config.auditKey ? "(too short)" : "",
    );
  }
}

const BASE64_PREFIX = "base64:";

/**
 * Text, or `base64:` and the key's bytes: what `warden audit key` prints, so a trail begun
 * without AUDIT_KEY (its key derived from the master key) can go on under one.
 */
function auditKey(env: Env): Uint8Array | undefined {
  const raw = read(env, "AUDIT_KEY");
  if (raw === undefined) return undefined;
  if (!raw.startsWith(BASE64_PREFIX)) return new TextEncoder().encode(raw);
  const encoded = raw.slice(BASE64_PREFIX.length);
  const bytes = Buffer.from(encoded, "base64");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || bytes.byteLength < 32) {
    throw new ConfigError("AUDIT_KEY", "text, or base64: followed by at least 32 base64-encoded bytes", "(hidden)");
  }
  return new Uint8Array(bytes);
}

function deepFreeze<T>(value: T): T {
  // Typed arrays cannot be frozen; the master key is copied out wherever it is used.
  if (value && typeof value === "object" && !ArrayBuffer.isView(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
