import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TestContext } from "../../testing/app";
import { contextWithAdmin, type LoggedIn } from "../../testing/identity";
import { AuditAction } from "./actions";
import type { SecurityEvent } from "./hook";
import { AuditTrail } from "./trail";

let ctx: TestContext;
let admin: LoggedIn;
beforeAll(async () => {
  ({ ctx, admin } = await contextWithAdmin());
});
afterAll(() => ctx.close());

const asAdmin = (method: string, path: string, body?: unknown, requestId?: string) =>
  ctx.req(method, path, { headers: { ...admin.auth, ...(requestId ? { "x-request-id": requestId } : {}) }, body });
const count = (sql: string, ...args: string[]) =>
  ctx.deps.db.$client.query<{ n: number }, string[]>(`SELECT count(*) AS n FROM ${sql}`).get(...args)?.n ?? -1;
const verify = async () => (await (await asAdmin("GET", "/v1/audit/verify")).json()) as { ok: boolean };

function event(action: SecurityEvent["action"], targetId: string): SecurityEvent {
  return {
    action,
    outcome: "success",
    tenantId: "acme",
    actor: { type: "user", id: admin.userId },
    target: { type: "token", id: targetId },
    requestId: `req-${targetId}`,
  };
}

describe("a change and its audit event", () => {
  test("a 2xx write should have its event on disk, carrying the request's id", async () => {
    const res = await asAdmin("POST", "/v1/admin/users", { email: "first@acme.test", role: "viewer" }, "create-first");
    expect(res.status).toBe(201);
    const { user } = await res.json();
    const events = ctx.auditEvents(AuditAction.userCreated).filter((row) => row.target_id === user.id);
    expect(events).toHaveLength(1);
    expect(events[0]?.request_id).toBe("create-first");
  });

  test("a duplicate email (409) should leave neither a second user nor a user.create event", async () => {
    const events = ctx.auditEvents(AuditAction.userCreated).length;
    const rows = ctx.auditEvents().length;
    const res = await asAdmin("POST", "/v1/admin/users", { email: "first@acme.test", role: "admin" }, "create-dup");
    expect(res.status).toBe(409);
    expect(ctx.auditEvents(AuditAction.userCreated)).toHaveLength(events);
    expect(ctx.auditEvents().some((row) => row.request_id === "create-dup")).toBe(false);
    expect(ctx.auditEvents()).toHaveLength(rows);
    expect(count("users WHERE tenant_id = ? AND email = ?", "acme", "first@acme.test")).toBe(1);
  });

  test("a revocation whose alongside write throws should keep neither the revocation nor its event", () => {
    const { revocation, audit } = ctx.deps.security;
    const rows = ctx.auditEvents().length;
    const revoked = revocation.token("jti-rolled-back", "acme", ctx.clock.now() + 60_000, "test");
    expect(() =>
      revocation.commit([revoked], (tx) => {
        audit.append(tx, event(AuditAction.revocationCreated, "jti-rolled-back"));
        // The event is in the transaction at this point; the failure after it must take it away.
        expect(ctx.auditEvents()).toHaveLength(rows + 1);
        throw new Error("write failed after the event");
      }),
    ).toThrow("write failed after the event");
    expect(ctx.auditEvents()).toHaveLength(rows);
    expect(count("revoked_tokens WHERE jti = ?", "jti-rolled-back")).toBe(0);
    const claims = { jti: "jti-rolled-back", sid: "s", sub: "u", tid: "acme", iat: 0 };
    expect(revocation.isRevoked(claims)).toBe(false);
  });

  test("after a rollback the next event should take the next seq and the chain should still hold", async () => {
    const last = ctx.auditEvents().at(-1)?.seq ?? 0;
    const res = await asAdmin("POST", "/v1/admin/revocations", { jti: "jti-after-rollback" }, "after-rollback");
    expect(res.status).toBe(201);
    const row = ctx.auditEvents().find((event) => event.request_id === "after-rollback");
    expect(row?.seq).toBe(last + 1);
    expect(await verify()).toMatchObject({ ok: true });
  });

  test("when the event cannot be written, the change it records should not be kept either", async () => {
    const sqlite = ctx.deps.db.$client;
    // A stand-in for a failing audit write (disk full, a bug in the trail): refuse user.create events only.
    sqlite.run(
      "CREATE TRIGGER test_refuse_user_create BEFORE INSERT ON audit_events WHEN NEW.action = 'user.create' BEGIN SELECT RAISE(ABORT, 'audit write refused'); END",
    );
    try {
      const res = await asAdmin("POST", "/v1/admin/users", { email: "ghost@acme.test", role: "viewer" });
      expect(res.status).toBe(500);
      expect(count("users WHERE email = ?", "ghost@acme.test")).toBe(0);
    } finally {
      sqlite.run("DROP TRIGGER test_refuse_user_create");
    }
    expect((await asAdmin("POST", "/v1/admin/users", { email: "ghost@acme.test", role: "viewer" })).status).toBe(201);
  });

  test("an API key revoked with a failing event should stay live", async () => {
    const { api_key, key } = await (await asAdmin("POST", "/v1/admin/api-keys", { name: "kept" })).json();
    const sqlite = ctx.deps.db.$client;
    sqlite.run(
      "CREATE TRIGGER test_refuse_apikey_revoke BEFORE INSERT ON audit_events WHEN NEW.action = 'apikey.revoke' BEGIN SELECT RAISE(ABORT, 'audit write refused'); END",
    );
    try {
      expect((await asAdmin("DELETE", `/v1/admin/api-keys/${key.id}`)).status).toBe(500);
    } finally {
      sqlite.run("DROP TRIGGER test_refuse_apikey_revoke");
    }
    const grant = await ctx.req("POST", "/v1/auth/token", {
      body: { grant_type: "client_credentials", client_secret: api_key },
    });
    expect(grant.status).toBe(200);
  });
});

describe("AuditTrail.append", () => {
  test("should throw outside a transaction and write nothing", () => {
    const rows = ctx.auditEvents().length;
    expect(ctx.deps.db.$client.inTransaction).toBe(false);
    expect(() => ctx.deps.security.audit.append(undefined, event(AuditAction.revocationCreated, "outside"))).toThrow(
      /transaction/,
    );
    expect(ctx.auditEvents()).toHaveLength(rows);
  });

  test("a trail of its own on the same database should refuse the same way", () => {
    const trail = new AuditTrail(ctx.deps.db, ctx.deps.security.auditKey, ctx.clock);
    expect(() => trail.append(undefined, event(AuditAction.tokenRevoked, "own"))).toThrow(/transaction/);
    // record() opens the transaction itself.
    trail.record(event(AuditAction.tokenRevoked, "own"));
    expect(ctx.auditEvents(AuditAction.tokenRevoked).at(-1)?.target_id).toBe("own");
  });
});
