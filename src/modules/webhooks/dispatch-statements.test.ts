import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext } from "../../testing/app";
import { DISPATCH_SQL, prepareDispatch } from "./dispatch-statements";

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(() => ctx.close());

const NOW = 1_000_000;
const BACKLOG = 2000;

/** Endpoint `a` (tenant t1) holds a backlog older than everything else; `b`, `c` (t2) and `e` (t3) a few rows; `d` is disabled. */
function plant(): void {
  const sqlite = ctx.deps.db.$client;
  sqlite.run("INSERT INTO tenants (id, created_at) VALUES ('t1', 0), ('t2', 0), ('t3', 0)");
  const endpoint = sqlite.prepare(
    `INSERT INTO webhook_endpoints (id, tenant_id, url, description, secret_sealed, created_at, disabled_at)
     VALUES (?, ?, 'http://127.0.0.1:9/', '', 'x', 0, ?)`,
  );
  endpoint.run("a", "t1", null);
  endpoint.run("b", "t2", null);
  endpoint.run("c", "t2", null);
  endpoint.run("d", "t2", 1);
  endpoint.run("e", "t3", null);
  const delivery = sqlite.prepare(
    `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, notification_id, event_type, payload, status, attempts, due_at, created_at)
     VALUES (?, ?, ?, 'n', 'alert.fired', '{}', ?, 0, ?, 0)`,
  );
  sqlite.transaction(() => {
    for (let i = 0; i < BACKLOG; i++) delivery.run(`a-${String(i).padStart(5, "0")}`, "t1", "a", "pending", i);
    for (const [id, endpointId, tenant, status, due] of [
      ["b-1", "b", "t2", "pending", BACKLOG + 3],
      ["b-2", "b", "t2", "failed", BACKLOG + 1],
      ["b-3", "b", "t2", "pending", BACKLOG + 5],
      ["b-done", "b", "t2", "delivered", BACKLOG],
      ["b-later", "b", "t2", "failed", NOW + 1],
      ["c-1", "c", "t2", "leased", BACKLOG + 2],
      ["d-1", "d", "t2", "pending", BACKLOG],
      ["e-1", "e", "t3", "pending", BACKLOG + 4],
    ] as const)
      delivery.run(id, tenant, endpointId, status, due);
  })();
}

describe("the lease's reads", () => {
  beforeAll(plant);

  test("past the endpoints and tenants at their share, the others' due rows in due order", () => {
    const sql = prepareDispatch(ctx.deps.db.$client);
    // The window is all a's backlog: nothing else is seen there.
    expect(new Set(sql.candidates.all(NOW, 64).map((row) => row.endpoint_id))).toEqual(new Set(["a"]));
    const behind = (fullEndpoints: string[], fullTenants: string[], limit = 64) =>
      sql.behind.all(NOW, JSON.stringify(fullEndpoints), JSON.stringify(fullTenants), limit).map((r) => r.id);
    expect(behind(["a"], [])).toEqual(["b-2", "c-1", "b-1", "e-1", "b-3"]);
    expect(behind(["a"], [], 3)).toEqual(["b-2", "c-1", "b-1"]);
    expect(behind(["a", "b"], ["t3"])).toEqual(["c-1"]);
    expect(behind([], ["t1", "t2"])).toEqual(["e-1"]);
  });

  test("read the due index in order, and never sort the backlog", () => {
    const plan = (sql: string) => {
      const statement = ctx.deps.db.$client.prepare<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${sql}`);
      try {
        return statement.all().map((row) => row.detail);
      } finally {
        statement.finalize();
      }
    };
    for (const sql of [DISPATCH_SQL.candidates, DISPATCH_SQL.behind]) {
      const steps = plan(sql);
      expect(steps).toContain("SEARCH d USING INDEX webhook_deliveries_due (due_at<?)");
      expect(steps.filter((step) => step.includes("TEMP B-TREE"))).toEqual([]);
    }
  });
});
