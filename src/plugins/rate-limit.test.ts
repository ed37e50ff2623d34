import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { gcraStep, LocalGcra } from "../lib/gcra";
import { createTestContext, type TestContext } from "../testing/app";
import { seedUser } from "../testing/identity";
import { clientKeyOf } from "./rate-limit";

describe("GCRA", () => {
  test("should allow the whole quota at once, then one per interval", () => {
    const gcra = new LocalGcra();
    const now = 1_000_000;
    const seen = Array.from({ length: 4 }, () => gcra.decide("k", 3, 60_000, now));
    expect(seen.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(seen.map((d) => d.remaining)).toEqual([2, 1, 0, 0]);
    expect(seen[3]?.retryAfterMs).toBe(20_000);
    expect(gcra.decide("k", 3, 60_000, now + 19_999).allowed).toBe(false);
    expect(gcra.decide("k", 3, 60_000, now + 20_000)).toMatchObject({ allowed: true, remaining: 0 });
    expect(gcra.decide("other", 3, 60_000, now).allowed).toBe(true);
  });

  test("should report the time to a full quota", () => {
    expect(gcraStep(undefined, 0, 600, 60_000).decision).toMatchObject({ remaining: 599, resetMs: 100 });
  });

  test("should stay bounded in memory", () => {
    const gcra = new LocalGcra(100);
    for (let i = 0; i < 1000; i++) gcra.decide(`k${i}`, 10, 60_000, 0);
    expect(gcra.size).toBeLessThanOrEqual(100);
  });
});

describe("rate limit plugin (in process)", () => {
  let limited: TestContext;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  // Tokens straight from the issuer: a login would spend the strict token-endpoint quota.
  const bearer = async (role: "viewer" | "developer") => {
    const user = await seedUser(limited, "rl-a", role);
    const { token } = await limited.deps.security.tokens.issue({
      sub: user.userId,
      tid: "rl-a",
      role,
      sid: `s-${role}`,
    });
    return { authorization: `Bearer ${token}` };
  };
  beforeAll(async () => {
    limited = await createTestContext({ RATE_LIMIT_PER_MINUTE: "3", RATE_LIMIT_AUTH_PER_MINUTE: "2" });
    alice = await bearer("viewer");
    bob = await bearer("developer");
  });
  afterAll(() => limited.close());

  test("should limit per principal with headers on every limited answer", async () => {
    const me = () => limited.req("GET", "/v1/auth/me", { headers: alice });
    const answers = [await me(), await me(), await me(), await me()];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    const first = answers[0];
    expect(first?.headers.get("ratelimit-policy")).toBe('"api";q=3;w=60');
    expect(first?.headers.get("ratelimit")).toBe('"api";r=2;t=20');
    expect(first?.headers.get("x-ratelimit-limit")).toBe("3");
    expect(first?.headers.get("x-ratelimit-remaining")).toBe("2");
    expect(Number(first?.headers.get("x-ratelimit-reset"))).toBeGreaterThan(Date.now() / 1000);
    const refused = answers[3];
    expect(refused?.headers.get("content-type")).toContain("application/problem+json");
    expect(refused?.headers.get("retry-after")).toBe("20");
    expect(refused?.headers.get("ratelimit")).toBe('"api";r=0;t=20');
    expect(refused?.headers.get("x-ratelimit-remaining")).toBe("0");
    const problem = await refused?.json();
    expect(problem).toMatchObject({ status: 429, type: "urn:warden:problem:rate-limited" });
    expect(problem.request_id).toBe(refused?.headers.get("x-request-id"));
  });

  test("should refill one request per interval", async () => {
    limited.clock.advance(20_000);
    expect((await limited.req("GET", "/v1/auth/me", { headers: alice })).status).toBe(200);
    expect((await limited.req("GET", "/v1/auth/me", { headers: alice })).status).toBe(429);
  });

  test("should give another principal its own quota", async () => {
    expect((await limited.req("GET", "/v1/auth/me", { headers: bob })).status).toBe(200);
  });

  test("should limit the token endpoint by client address, more strictly", async () => {
    const revoke = () => limited.req("POST", "/v1/auth/revoke", { body: { token: "unknown" } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await revoke()).status);
    expect(statuses).toEqual([200, 200, 429]);
    const refused = await limited.req("POST", "/v1/auth/token", { body: { grant_type: "password" } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("ratelimit-policy")).toBe('"auth";q=2;w=60');
  });

  test("should limit requests with bad tokens and bad input by address", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await limited.req("GET", "/v1/auth/me", { headers: { authorization: "Bearer nope" } })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  test("should not limit health, readiness, metrics, docs or JWKS", async () => {
    for (const path of ["/health", "/ready", "/metrics", "/swagger/json", "/.well-known/jwks.json"]) {
      for (let i = 0; i < 5; i++) {
        const res = await limited.req("GET", path);
        expect({ path, status: res.status }).toEqual({ path, status: 200 });
        expect(res.headers.get("ratelimit")).toBeNull();
      }
    }
  });

  test("should count decisions by class", async () => {
    const text = await (await limited.req("GET", "/metrics")).text();
    expect(text).toMatch(/rate_limit_decisions_total\{class="api",decision="limited"\} [1-9]/);
    expect(text).toMatch(/rate_limit_decisions_total\{class="auth",decision="allowed"\} [1-9]/);
    expect(text).toMatch(/rate_limit_decisions_total\{class="auth",decision="limited"\} [1-9]/);
    expect(text).toContain("rate_limit_fallback_active 0");
  });
});

describe("an anonymous caller's key", () => {
  test("is its IPv4 address, or the /64 of its IPv6 one, whatever way the address is written", () => {
    expect(clientKeyOf("203.0.113.7")).toBe("ip:203.0.113.7");
    expect(clientKeyOf("::ffff:203.0.113.7")).toBe("ip:203.0.113.7");
    const net = clientKeyOf("2001:db8:0:5::1");
    expect(net).toBe("ip6:2001:db8:0:5::/64");
    for (const same of ["2001:db8:0:5:ffff:ffff:ffff:ffff", "2001:0db8:0000:0005::abcd", "2001:db8::5:0:0:0:1"])
      expect(clientKeyOf(same)).toBe(net);
    expect(clientKeyOf("2001:db8:0:6::1")).not.toBe(net);
    expect(clientKeyOf("::1")).toBe("ip6:0:0:0:0::/64");
    expect(clientKeyOf("fe80::1%eth0")).toBe("ip6:fe80:0:0:0::/64");
    expect(clientKeyOf(undefined)).toBe("ip:unknown");
  });
});
