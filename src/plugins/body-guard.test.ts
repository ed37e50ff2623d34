import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { t } from "elysia";
import { unknownFieldOf } from "../lib/unknown-field";
import { createTestContext, type TestContext } from "../testing/app";
import { type LoggedIn, seedAndLogin } from "../testing/identity";

describe("unknownFieldOf", () => {
  const schema = t.Object(
    {
      name: t.String(),
      recipients: t.Optional(t.Object({ role: t.Optional(t.String()), user_ids: t.Optional(t.Array(t.String())) })),
      items: t.Optional(t.Array(t.Object({ id: t.String() }))),
      data: t.Optional(t.Unknown()),
      labels: t.Optional(t.Record(t.String(), t.String())),
    },
    { additionalProperties: false },
  );

  test.each([
    [{ name: "a" }, undefined],
    [{ name: "a", admin: true }, "admin"],
    [{ name: "a", recipients: { role: "admin", user_id: ["u"] } }, "recipients.user_id"],
    [{ name: "a", items: [{ id: "1" }, { id: "2", extra: 1 }] }, "items.1.extra"],
    // Free-form parts are not looked into.
    [{ name: "a", data: { anything: { at: "all" } }, labels: { team: "x" } }, undefined],
    // A value of the wrong kind is the type check's to refuse.
    [{ name: "a", recipients: "admins" }, undefined],
    // Object.prototype's names are no fields of a body.
    [{ name: "a", constructor: 1 }, "constructor"],
    [{ name: "a", recipients: { toString: "x" } }, "recipients.toString"],
  ])("%j → %p", (body, field) => {
    expect(unknownFieldOf(schema, body)).toBe(field);
  });
});

describe("a body field the route does not name", () => {
  let ctx: TestContext;
  let admin: LoggedIn;
  let endpointId: string;
  beforeAll(async () => {
    ctx = await createTestContext();
    admin = await seedAndLogin(ctx, "acme", "admin");
    const created = await ctx.req("POST", "/v1/webhooks/endpoints", {
      headers: admin.auth,
      body: { url: "http://127.0.0.1:9/hook" },
    });
    endpointId = ((await created.json()) as { endpoint: { id: string } }).endpoint.id;
  });
  afterAll(() => ctx.close());

  const refusal = async (res: Response) => {
    const problem = (await res.json()) as { errors?: { field: string; message: string }[] };
    return { status: res.status, field: problem.errors?.[0]?.field };
  };

  test("a mistyped overlap should not leave the old secret signing for a day", async () => {
    const res = await ctx.req("POST", `/v1/webhooks/endpoints/${endpointId}/rotate-secret`, {
      headers: admin.auth,
      body: { overlap_seconds: 0 },
    });
    expect(await refusal(res)).toEqual({ status: 422, field: "overlap_seconds" });
    const [rotations] = [ctx.auditEvents("webhook.rotate_secret")];
    expect(rotations).toHaveLength(0);
  });

  test("a mistyped event filter should not subscribe an endpoint to every event", async () => {
    const before = ctx.deps.webhooks.endpoints.list("acme", { limit: 100 }).length;
    const res = await ctx.req("POST", "/v1/webhooks/endpoints", {
      headers: admin.auth,
      body: { url: "http://127.0.0.1:9/billing", event_type: ["billing.*"] },
    });
    expect(await refusal(res)).toEqual({ status: 422, field: "event_type" });
    expect(ctx.deps.webhooks.endpoints.list("acme", { limit: 100 })).toHaveLength(before);
  });

  test("a mistyped recipient list should not leave its users out (the lean path, and Elysia's)", async () => {
    for (const path of ["/v1/notifications", "/v1/notifications?via=elysia"]) {
      const res = await ctx.req("POST", path, {
        headers: admin.auth,
        body: { recipients: { role: "admin", user_id: [admin.userId] }, type: "t.x", title: "x" },
      });
      const got = await refusal(res);
      // Elysia's route takes no query: the parameter is ignored there, the field still refused.
      expect(got).toEqual({ status: 422, field: "recipients.user_id" });
    }
  });

  test("a form's bracketed array field should be refused, not taken for an endpoint of every event", async () => {
    const res = await ctx.fetch(
      new Request("http://localhost/v1/webhooks/endpoints", {
        method: "POST",
        headers: { ...admin.auth, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ url: "http://127.0.0.1:9/f", "event_types[]": "billing.*" }),
      }),
    );
    expect(await refusal(res)).toEqual({ status: 422, field: "event_types[]" });
  });

  test("a body that is no object should be refused as a whole, not as a field called body", async () => {
    const res = await ctx.req("POST", "/v1/notifications", { headers: admin.auth, body: [] });
    const problem = (await res.json()) as { detail: string; errors: unknown[] };
    expect(res.status).toBe(422);
    expect(problem.detail).toBe("Invalid body. The request body as a whole: Expected object.");
    expect(problem.errors).toEqual([{ in: "body", field: "", message: "Expected object" }]);
  });

  test("a PATCH whose only field is misspelt should name it, not ask for one of the fields", async () => {
    const res = await ctx.req("PATCH", `/v1/webhooks/endpoints/${endpointId}`, {
      headers: admin.auth,
      body: { descripton: "x" },
    });
    const problem = (await res.json()) as { detail: string; errors: { in: string; field: string; message: string }[] };
    expect(res.status).toBe(422);
    expect(problem.errors).toEqual([
      { in: "body", field: "descripton", message: "Not a field of this body; it takes url, description, event_types." },
    ]);
    expect(problem.detail).toBe(
      "Invalid body. descripton: Not a field of this body; it takes url, description, event_types.",
    );
  });

  test("a dotted field name should be named whole, with the fields the body takes", async () => {
    const res = await ctx.req("POST", "/v1/notifications", {
      headers: admin.auth,
      body: { recipients: { role: "admin" }, type: "t.x", title: "x", "x.y": 1 },
    });
    const problem = (await res.json()) as { errors: { field: string; message: string }[] };
    expect(problem.errors[0]?.field).toBe("x.y");
    expect(problem.errors[0]?.message).toContain("it takes recipients, type, title, body, data");
  });

  test.each([["[]"], ["1"], ['"jti"'], ['[{"jti":"a"}]']])(
    "a revocation body %s that is no object should be refused alike on the lean path and Elysia's",
    async (body) => {
      const answers = [];
      for (const path of ["/v1/admin/revocations", "/v1/admin/revocations?via=elysia"]) {
        const res = await ctx.fetch(
          new Request(`http://localhost${path}`, {
            method: "POST",
            headers: { ...admin.auth, "content-type": "application/json" },
            body,
          }),
        );
        answers.push({ status: res.status, detail: ((await res.json()) as { detail: string }).detail });
      }
      expect(answers[0]).toEqual({
        status: 422,
        detail: "Invalid body. The request body as a whole: Expected object.",
      });
      expect(answers[1]).toEqual(answers[0]);
    },
  );

  test("the OAuth endpoints should still ignore parameters they do not know (RFC 6749 §3.1)", async () => {
    const res = await ctx.req("POST", "/v1/auth/revoke", {
      body: { token: "unknown", token_type_hint: "x", extra: 1 },
    });
    expect(res.status).toBe(200);
  });
});
