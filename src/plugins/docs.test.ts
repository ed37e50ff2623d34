import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createAdminWithCli, passwordLogin } from "../testing/cli";
import { startServer, type TestServer } from "../testing/server";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.stop());

describe("the OpenAPI document", () => {
  test("the OpenAPI document should describe every route with its schemas", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    expect(spec.openapi).toStartWith("3.");
    expect(spec.info.title).toBe("Warden API");
    const paths = Object.keys(spec.paths);
    for (const path of ["/health", "/ready", "/metrics", "/.well-known/jwks.json", "/v1/auth/token", "/v1/auth/me"]) {
      expect(paths).toContain(path);
    }
    expect(paths.some((path) => path.startsWith("/swagger"))).toBe(false);
    const health = spec.paths["/health"].get;
    expect(health.responses["200"].content["application/json"].schema.properties.status).toBeDefined();
    const ready = spec.paths["/ready"].get;
    expect(Object.keys(ready.responses)).toEqual(expect.arrayContaining(["200", "503"]));

    const BODILESS = ["/logout", "/disable", "/enable", "/read", "/read-all", "/rotate-secret", "/retry"];
    const OAUTH = ["/v1/auth/token", "/v1/auth/revoke"];
    // Every operation has a summary; bodies and answers have schemas; protected ones say so.
    type Operation = {
      summary?: string;
      requestBody?: { content?: unknown };
      security?: unknown;
      responses?: Record<string, unknown>;
    };
    expect(spec.components.schemas.Problem.required).toEqual(["type", "title", "status", "detail"]);
    const located = spec.components.schemas.Problem.properties.errors.items.properties.in;
    expect(located).toMatchObject({ type: "string", enum: ["body", "query", "path", "header"] });
    expect(located.default).toBeUndefined();
    for (const [path, operations] of Object.entries<Record<string, Operation>>(spec.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect({ where, summary: typeof operation.summary }).toEqual({ where, summary: "string" });
        // OAuth's endpoints send their errors as application/json (RFC 6749 §5.2).
        const type =
          path.startsWith("/v1/auth/token") || path.startsWith("/v1/auth/revoke")
            ? "application/json"
            : "application/problem+json";
        expect({ where, problems: operation.responses?.["4XX"] }).toMatchObject({
          where,
          problems: { content: { [type]: { schema: { $ref: "#/components/schemas/Problem" } } } },
        });
        // Every operation says what success looks like (a 204 too), not only how it fails.
        const success = Object.keys(operation.responses ?? {}).filter((code) => code.startsWith("2"));
        expect({ where, success: success.length > 0 }).toEqual({ where, success: true });
        if (["post", "put", "patch"].includes(method) && !BODILESS.some((suffix) => path.endsWith(suffix))) {
          const content = operation.requestBody?.content as Record<string, { schema?: object }> | undefined;
          // OAuth clients send forms to the token and revocation endpoints; every body takes JSON.
          const documented = Boolean(
            content?.["application/json"]?.schema &&
              (!OAUTH.includes(path) || content["application/x-www-form-urlencoded"]?.schema),
          );
          expect({ where, body: documented }).toEqual({ where, body: true });
          // "Send only these", as the README says of every body; OAuth's take what RFC 6749 lets clients add.
          for (const [type, media] of Object.entries(content ?? {})) {
            const closed = (media.schema as { additionalProperties?: unknown } | undefined)?.additionalProperties;
            const expected = OAUTH.includes(path) ? undefined : false;
            expect({ where, type, closed }).toEqual({ where, type, closed: expected });
          }
        }
        if (path.startsWith("/v1/") && !["/v1/auth/token", "/v1/auth/revoke"].includes(path)) {
          expect({ where, security: operation.security }).toEqual({ where, security: [{ bearer: [] }] });
        }
        // A public operation says it takes no credentials rather than leaving it unsaid.
        expect({ where, security: Array.isArray(operation.security) }).toEqual({ where, security: true });
      }
    }
  });

  test("integers should be documented as integers with their bounds, not as a string-or-integer union", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    const text = JSON.stringify(spec);
    expect(text).not.toContain('"format":"integer"');
    // A 3.1 document: null is a type, not 3.0's `nullable`.
    expect(text).not.toContain('"nullable"');
    const rating = spec.paths["/v1/feedback"].post.requestBody.content["application/json"].schema.properties.rating;
    expect(rating).toEqual({ type: "integer", minimum: 1, maximum: 5 });
    const limit = spec.paths["/v1/feedback"].get.parameters.find((p: { name: string }) => p.name === "limit");
    expect(limit.schema).toEqual({ type: "integer", minimum: 1, maximum: 200, default: 50 });
  });

  test("bodies should be closed at every depth but OAuth's, and a form's leave out what a form cannot send", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    const create = spec.paths["/v1/webhooks/endpoints"].post.requestBody.content;
    expect(Object.keys(create["application/json"].schema.properties)).toContain("event_types");
    const form = create["application/x-www-form-urlencoded"].schema;
    expect(Object.keys(form.properties)).toEqual(["url", "description"]);
    expect(form.description).toContain("event_types need JSON");
    const feedback = spec.paths["/v1/feedback"].post.requestBody.content["application/x-www-form-urlencoded"].schema;
    expect(Object.keys(feedback.properties)).not.toContain("labels");
    const notification = spec.paths["/v1/notifications"].post.requestBody.content["application/json"].schema;
    expect(notification.properties.recipients.additionalProperties).toBe(false);
    expect(notification.properties.data.additionalProperties).toBe(true);
    const token = spec.paths["/v1/auth/token"].post.requestBody.content["application/json"].schema;
    expect(token.additionalProperties).toBeUndefined();
  });

  test("the document should be the same on every fetch (it is cached and finished in place)", async () => {
    const first = await (await server.fetch("/swagger/json")).text();
    const again = await (await server.fetch("/swagger/json")).text();
    expect(again).toBe(first);
    const names = JSON.parse(again).paths["/v1/auth/me"].get.parameters.map((p: { name: string }) => p.name);
    expect(names.filter((name: string) => name === "X-Client-ID")).toHaveLength(1);
  });

  test("the statuses a client acts on should be spelt out: 401 with its challenge, 403, 429 with when to retry", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    const me = spec.paths["/v1/auth/me"].get;
    expect(Object.keys(me.responses["401"].headers)[0]).toBe("WWW-Authenticate");
    expect(me.responses["403"].content["application/problem+json"]).toBeDefined();
    expect(Object.keys(me.responses["429"].headers)).toEqual([
      "Retry-After",
      "X-Request-ID",
      "RateLimit",
      "RateLimit-Policy",
      "X-RateLimit-Limit",
      "X-RateLimit-Remaining",
      "X-RateLimit-Reset",
    ]);
    expect(me.parameters.map((p: { name: string }) => p.name)).toContain("X-Client-ID");
    // The token endpoint needs no token: its 401 is a Basic client's, and in OAuth's content type.
    const token = spec.paths["/v1/auth/token"].post;
    expect(token.responses["401"].headers["WWW-Authenticate"].description).toBe('Basic realm="warden"');
    expect(Object.keys(token.responses["401"].content)).toEqual(["application/json"]);
    expect(Object.keys(token.responses["429"].content)).toEqual(["application/json"]);
    expect(spec.paths["/health"].get.responses["429"]).toBeUndefined();
  });

  test("the document should say that lengths count UTF-16 code units, not JSON Schema's code points", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    expect(spec.info.description).toContain("count UTF-16 code units");
    expect(spec.info.description).toContain("counts as two");
  });

  test("every query parameter should have a description where Swagger UI shows it", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    type Parameter = { name: string; in: string; description?: string; schema: { description?: string } };
    const undescribed: string[] = [];
    for (const [path, operations] of Object.entries<Record<string, { parameters?: Parameter[] }>>(spec.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const parameter of operation.parameters ?? []) {
          if (parameter.in !== "query") continue;
          if (!parameter.description) undescribed.push(`${method.toUpperCase()} ${path} ${parameter.name}`);
          expect(parameter.schema.description).toBeUndefined();
        }
      }
    }
    expect(undescribed).toEqual([]);
    const deliveries = spec.paths["/v1/webhooks/deliveries"].get.parameters;
    const status = deliveries.find((p: Parameter) => p.name === "status");
    expect(status.description).toContain("failed (waiting for a scheduled retry, or parked");
  });

  test("the headers a response carries should be declared on it, as the service sends them", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    type Documented = { headers?: Record<string, unknown> };
    const LIMITER = [
      "RateLimit",
      "RateLimit-Policy",
      "X-RateLimit-Limit",
      "X-RateLimit-Remaining",
      "X-RateLimit-Reset",
    ];
    for (const [path, operations] of Object.entries<Record<string, { responses: Record<string, Documented> }>>(
      spec.paths,
    )) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          const where = `${method.toUpperCase()} ${path} ${status}`;
          const names = Object.keys(response.headers ?? {});
          expect({ where, names }).toMatchObject({ where, names: expect.arrayContaining(["X-Request-ID"]) });
          const limited = LIMITER.filter((name) => names.includes(name));
          expect({ where, limited }).toEqual({ where, limited: path.startsWith("/v1/") ? LIMITER : [] });
        }
      }
    }
    const declared = (path: string, method: string, status: string) =>
      Object.keys(spec.paths[path][method].responses[status].headers).map((name) => name.toLowerCase());
    const sent = async (res: Response) => {
      await res.arrayBuffer();
      return [...res.headers.keys()];
    };

    const health = await server.fetch("/health");
    expect(await sent(health)).toEqual(expect.arrayContaining(declared("/health", "get", "200")));
    const jwks = await server.fetch("/.well-known/jwks.json");
    expect(await sent(jwks)).toEqual(expect.arrayContaining(declared("/.well-known/jwks.json", "get", "200")));
    const cache = spec.paths["/.well-known/jwks.json"].get.responses["200"].headers["Cache-Control"];
    expect(cache.schema.enum).toEqual([jwks.headers.get("cache-control")]);

    const basic = await server.fetch("/v1/auth/token", {
      method: "POST",
      headers: { authorization: `Basic ${btoa("nobody:wdn_nobody")}`, "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "client_credentials" }),
    });
    expect(basic.status).toBe(401);
    expect(basic.headers.get("www-authenticate")).toBe('Basic realm="warden"');
    expect(await sent(basic)).toEqual(expect.arrayContaining(declared("/v1/auth/token", "post", "401")));
    const anonymous = await server.fetch("/v1/auth/me");
    expect(anonymous.status).toBe(401);
    expect(await sent(anonymous)).toEqual(expect.arrayContaining(declared("/v1/auth/me", "get", "401")));
  });

  test("response timestamps should be documented as date-times", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    const me = spec.paths["/v1/auth/me"].get.responses["200"].content["application/json"].schema;
    expect(me.properties.expires_at).toMatchObject({ type: "string", format: "date-time" });
  });

  test("an optional body should be documented with its schema, as not required", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    const body = spec.paths["/v1/webhooks/endpoints/{id}/rotate-secret"].post.requestBody;
    expect(body.required).toBe(false);
    // As JSON or a form, like every other body: the route takes both.
    for (const type of ["application/json", "application/x-www-form-urlencoded"])
      expect(body.content[type].schema).toMatchObject({
        type: "object",
        additionalProperties: false,
        properties: { previous_secret_overlap_seconds: { type: "integer", minimum: 0, maximum: 86_400 } },
      });
  });

  test("public operations should say they take no credentials, and the document where it is served", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    expect(spec.servers).toEqual([{ url: "/", description: "this server" }]);
    for (const [path, method] of [
      ["/health", "get"],
      ["/ready", "get"],
      ["/metrics", "get"],
      ["/.well-known/jwks.json", "get"],
      ["/v1/auth/revoke", "post"],
    ] as const) {
      expect({ path, security: spec.paths[path][method].security }).toEqual({ path, security: [] });
      const res = await server.fetch(path, {
        method: method.toUpperCase(),
        body: method === "post" ? "token=x" : undefined,
        headers: method === "post" ? { "content-type": "application/x-www-form-urlencoded" } : {},
      });
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      await res.arrayBuffer();
    }
  });

  test("every operationId should be a distinct identifier", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    const ids = Object.values<Record<string, { operationId: string }>>(spec.paths).flatMap((operations) =>
      Object.values(operations).map((operation) => operation.operationId),
    );
    expect(ids.filter((id) => !/^[a-z][A-Za-z0-9]*$/.test(id))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(spec.paths["/.well-known/jwks.json"].get.operationId).toBe("getWellKnownJwksJson");
    expect(spec.paths["/v1/admin/api-keys"].get.operationId).toBe("getV1AdminApiKeys");
  });

  test("the token endpoint should document HTTP Basic as an optional way to send the API key", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    expect(spec.components.securitySchemes.basic).toEqual({ type: "http", scheme: "basic" });
    const token = spec.paths["/v1/auth/token"].post;
    expect(token.security).toEqual([{}, { basic: [] }]);
    // A bearer route's extras (403, X-Client-ID) are not the token endpoint's.
    expect(token.responses["403"]).toBeUndefined();
    expect(JSON.stringify(token.parameters ?? [])).not.toContain("X-Client-ID");
  });

  test("a notification's data should be documented as an object, and a replay's header on the 201", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    const create = spec.paths["/v1/notifications"].post;
    expect(create.requestBody.content["application/json"].schema.properties.data).toMatchObject({ type: "object" });
    expect(create.responses["201"].headers["Idempotent-Replayed"].schema).toEqual({ type: "string", enum: ["true"] });
    expect(create.responses["201"].content["application/json"].schema.type).toBe("object");
    expect(JSON.stringify(spec)).not.toContain("x-response-headers");
  });

  test("feedback labels should be documented as an object of strings, and problems with OAuth's fields", async () => {
    const spec = await (await server.fetch("/swagger/json")).json();
    const labels = spec.paths["/v1/feedback"].post.requestBody.content["application/json"].schema.properties.labels;
    expect(JSON.stringify(spec)).not.toContain("x-documented-as");
    expect(labels).toMatchObject({ type: "object", maxProperties: 20, additionalProperties: { type: "string" } });
    expect(Object.keys(spec.components.schemas.Problem.properties)).toEqual(
      expect.arrayContaining(["type", "detail", "errors", "error", "error_description"]),
    );
  });

  test("the bodies Swagger UI fills in should be ones the service accepts", async () => {
    const admin = await createAdminWithCli(server.dataDir, { tenant: "examples", email: "examples@example.test" });
    const spec = await (await server.fetch("/swagger/json")).json();
    const token = spec.paths["/v1/auth/token"].post.requestBody.content;
    // The enum is the document's: an unknown grant type is still OAuth's unsupported_grant_type.
    expect(token["application/x-www-form-urlencoded"].schema.properties.grant_type.enum).toEqual([
      "password",
      "client_credentials",
      "refresh_token",
    ]);
    const unsupported = await server.fetch("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "string" }),
    });
    expect(await unsupported.json()).toMatchObject({ status: 400, error: "unsupported_grant_type" });
    for (const type of ["application/json", "application/x-www-form-urlencoded"]) {
      const [example] = token[type].schema.examples;
      expect(example).toEqual({ grant_type: "client_credentials", client_secret: expect.any(String) });
    }
    // The example with the caller's own key in its place.
    const issued = await server.fetch("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...token["application/json"].schema.examples[0], client_secret: admin.api_key }),
    });
    expect(issued.status).toBe(200);
    const { access_token } = (await issued.json()) as { access_token: string };

    const [notification] = spec.paths["/v1/notifications"].post.requestBody.content["application/json"].schema.examples;
    const created = await server.fetch("/v1/notifications", {
      method: "POST",
      headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
      body: JSON.stringify(notification),
    });
    expect(created.status).toBe(201);
  });

  test("every documented route's first requests should leave stdout JSON lines only and stderr empty", async () => {
    // Elysia compiles a route's schemas at its first request, and prints a schema it cannot
    // compile to the console; a lean route's body step is built at the first lean request.
    const admin = await createAdminWithCli(server.dataDir, { tenant: "docs", email: "docs@example.test" });
    const token = await passwordLogin(server, admin);
    const spec = await (await server.fetch("/swagger/json")).json();
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    let sent = 0;
    for (const [path, operations] of Object.entries<Record<string, unknown>>(spec.paths)) {
      const url = path.replaceAll(/\{[^}]+\}/g, "01J000000000000000000000XX");
      for (const method of Object.keys(operations)) {
        const body = method === "get" || method === "delete" ? undefined : "{}";
        // Once as is (the lean path, where the route is lean), once with a query (Elysia).
        for (const target of [url, `${url}?docs=1`]) {
          const res = await server.fetch(target, { method: method.toUpperCase(), headers, body });
          expect(res.status, `${method} ${target}`).toBeLessThan(500);
          await res.arrayBuffer();
          sent++;
        }
      }
    }
    expect(sent).toBeGreaterThan(60);
    expect(server.logs.filter((line) => "raw" in line).slice(0, 3)).toEqual([]);
    expect(server.stderr()).toBe("");
  });
});
