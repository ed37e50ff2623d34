import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Db, openDatabase } from "../../../db/client";
import { revokedTokens } from "../../../db/schema";
import { ManualClock } from "../../lib/clock";
import { type RevocableClaims, type Revocation, RevocationService } from "./service";

const COVER_MS = (900 + 30) * 1000;
// Half a second past a whole second, so "the same second, before/after the cut-off" both exist.
const START = Date.UTC(2026, 0, 1, 12, 0, 0) + 500;
const SECOND = Math.floor(START / 1000);

let dataDir: string;
let db: Db;
let clock: ManualClock;
let service: RevocationService;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "warden-revocation-"));
  db = openDatabase(dataDir);
  clock = new ManualClock(START);
  service = new RevocationService(db, clock, COVER_MS);
  service.load();
});

afterEach(() => {
  db.$client.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function claims(overrides: Partial<RevocableClaims> = {}): RevocableClaims {
  return { jti: "jti-1", sid: "sid-1", sub: "user-1", tid: "acme", iat: SECOND - 60, ...overrides };
}

function rowCount(table: "revoked_tokens" | "revocation_cutoffs"): number {
  return db.$client.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()?.n ?? -1;
}

describe("RevocationService", () => {
  test("a revoked jti should match only tokens of the tenant that revoked it", () => {
    service.commit([service.token("jti-1", "acme", START + COVER_MS, "test")]);
    expect(service.isRevoked(claims())).toBe(true);
    expect(service.isRevoked(claims({ tid: "globex" }))).toBe(false);
    expect(service.isRevoked(claims({ jti: "jti-2" }))).toBe(false);
  });

  test("a session cut-off should revoke every token of that session, whatever its iat", () => {
    service.commit([service.cutoff("session", "sid-1", "acme", "logout")]);
    expect(service.isRevoked(claims())).toBe(true);
    expect(service.isRevoked(claims({ jti: "other", iat: SECOND + 10 }))).toBe(true);
    expect(service.isRevoked(claims({ sid: "sid-2" }))).toBe(false);
  });

  test.each([
    ["user", "user-1", { sub: "user-1" }, { sub: "user-2" }],
    ["tenant", "acme", { tid: "acme" }, { tid: "globex" }],
  ] as const)("a %s cut-off should revoke tokens issued before it and not after", (scope, subject, hit, miss) => {
    service.commit([service.cutoff(scope, subject, "acme", "test")]);
    // Issued earlier, and earlier in the same second: revoked.
    expect(service.isRevoked(claims({ ...hit, iat: SECOND - 1 }))).toBe(true);
    expect(service.isRevoked(claims({ ...hit, iat: SECOND }))).toBe(true);
    // Issued in a later second: alive.
    expect(service.isRevoked(claims({ ...hit, iat: SECOND + 1 }))).toBe(false);
    // Someone else entirely: alive.
    expect(service.isRevoked(claims({ ...miss, iat: SECOND - 1 }))).toBe(false);
  });

  test("minimumIssuedAt should let a token issued in the same second, after a cut-off, pass", () => {
    expect(service.minimumIssuedAt("user-1", "acme")).toBe(SECOND);
    service.commit([service.cutoff("user", "user-1", "acme", "test")]);
    clock.advance(100); // still the same wall-clock second
    const iat = service.minimumIssuedAt("user-1", "acme");
    expect(iat).toBe(SECOND + 1);
    expect(service.isRevoked(claims({ iat }))).toBe(false);
    // The naive choice, the current second, would have been revoked.
    expect(service.isRevoked(claims({ iat: Math.floor(clock.now() / 1000) }))).toBe(true);

    service.commit([service.cutoff("tenant", "globex", "globex", "test")]);
    const tenantIat = service.minimumIssuedAt("user-9", "globex");
    expect(service.isRevoked(claims({ sub: "user-9", tid: "globex", iat: tenantIat }))).toBe(false);
  });

  test("revocations should survive a restart: a new instance loads them from SQLite", () => {
    service.commit([
      service.token("jti-1", "acme", START + COVER_MS, "test"),
      service.cutoff("session", "sid-7", "acme", "test"),
      service.cutoff("user", "user-7", "acme", "test"),
      service.cutoff("tenant", "globex", "globex", "test"),
    ]);
    db.$client.close();
    db = openDatabase(dataDir);
    const restarted = new RevocationService(db, clock, COVER_MS);
    expect(restarted.isRevoked(claims())).toBe(false); // nothing until load()
    restarted.load();
    expect(restarted.size).toBe(4);
    expect(restarted.isRevoked(claims())).toBe(true);
    expect(restarted.isRevoked(claims({ jti: "x", sid: "sid-7" }))).toBe(true);
    expect(restarted.isRevoked(claims({ jti: "x", sub: "user-7", iat: SECOND }))).toBe(true);
    expect(restarted.isRevoked(claims({ jti: "x", sub: "user-7", iat: SECOND + 1 }))).toBe(false);
    expect(restarted.isRevoked(claims({ jti: "x", tid: "globex", iat: SECOND }))).toBe(true);
    expect(restarted.isRevoked(claims({ jti: "x", tid: "globex", iat: SECOND + 1 }))).toBe(false);
  });

  test("load should skip rows that have expired", () => {
    service.commit([
      service.token("jti-1", "acme", START + 1000, "test"),
      service.cutoff("user", "user-1", "acme", "t"),
    ]);
    clock.advance(1000);
    const restarted = new RevocationService(db, clock, COVER_MS);
    restarted.load();
    expect(restarted.size).toBe(1);
    expect(restarted.isRevoked(claims({ iat: SECOND + 1 }))).toBe(false);
  });

  test("purgeExpired should delete expired rows and forget them, keeping live ones", () => {
    service.commit([
      service.token("jti-1", "acme", START + 1000, "short"),
      service.cutoff("session", "sid-2", "acme", "covers COVER_MS"),
    ]);
    expect(service.purgeExpired()).toBe(0);
    clock.advance(1000);
    expect(service.purgeExpired()).toBe(1);
    expect(rowCount("revoked_tokens")).toBe(0);
    expect(service.isRevoked(claims())).toBe(false);
    expect(service.isRevoked(claims({ sid: "sid-2" }))).toBe(true);

    clock.advance(COVER_MS);
    expect(service.purgeExpired()).toBe(1);
    expect(rowCount("revocation_cutoffs")).toBe(0);
    expect(service.size).toBe(0);
    expect(service.isRevoked(claims({ sid: "sid-2" }))).toBe(false);
  });

  test("a failing alongside writer should roll the revocation back: nothing stored, nothing applied, nothing published", () => {
    const published: Revocation[] = [];
    service.onCommit((revocation) => published.push(revocation));
    const revocation = service.token("jti-1", "acme", START + COVER_MS, "test");
    expect(() =>
      service.commit([revocation], (tx) => {
        // Written in the same transaction, so it must disappear with it.
        tx.insert(revokedTokens)
          .values({ jti: "side", tenantId: "acme", revokedAt: START, expiresAt: START + COVER_MS, reason: "x" })
          .run();
        throw new Error("alongside failed");
      }),
    ).toThrow("alongside failed");
    expect(rowCount("revoked_tokens")).toBe(0);
    expect(service.size).toBe(0);
    expect(service.isRevoked(claims())).toBe(false);
    expect(published).toHaveLength(0);

    service.commit([revocation]);
    expect(published).toEqual([revocation]);
    expect(rowCount("revoked_tokens")).toBe(1);
  });

  test("apply should ignore an already-expired revocation and never lower a cut-off", () => {
    service.apply(service.token("late", "acme", START, "arrived after it expired"));
    expect(service.isRevoked(claims({ jti: "late" }))).toBe(false);

    service.commit([service.cutoff("user", "user-1", "acme", "newer")]);
    const older: Revocation = { ...service.cutoff("user", "user-1", "acme", "older"), at: START - 60_000 };
    service.apply(older);
    expect(service.isRevoked(claims({ iat: SECOND }))).toBe(true);
  });
});
