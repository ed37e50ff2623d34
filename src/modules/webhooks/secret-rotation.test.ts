import { describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { useWebhookWorld } from "../../testing/webhooks";

const t = useWebhookWorld();
const { drain, advance } = t;
const freshEndpoint = () => t.freshEndpoint();

const rotate = (id: string, body?: unknown) =>
  t.world.ctx.req("POST", `/v1/webhooks/endpoints/${id}/rotate-secret`, { headers: t.world.admin.auth, body });

/** The signatures on the next delivery. */
async function nextSignatures(): Promise<{ signatures: string[]; verifies: (secret: string) => boolean }> {
  await t.world.notify();
  await drain();
  const got = t.receiver.received.at(-1);
  if (!got) throw new Error("nothing received");
  // The t.receiver's clock does not follow the test's: compare signatures, not timestamps.
  const sign = (secret: string) => new Webhook(secret).sign(got.id, new Date(Number(got.timestamp) * 1000), got.body);
  return {
    signatures: got.signature.split(" "),
    verifies: (secret) => got.signature.split(" ").includes(sign(secret)),
  };
}

describe("secret rotation", () => {
  test("during a rotation both secrets sign; after 24 hours only the new one", async () => {
    const { id, secret: old } = await freshEndpoint();
    const res = await t.world.ctx.req("POST", `/v1/webhooks/endpoints/${id}/rotate-secret`, {
      headers: t.world.admin.auth,
    });
    expect(res.status).toBe(200);
    const { secret: fresh } = (await res.json()) as { secret: string };
    expect(fresh).not.toBe(old);
    await t.world.notify();
    await drain();
    const during = t.receiver.received.at(-1);
    if (!during) throw new Error("nothing received");
    expect(during.signature.split(" ")).toHaveLength(2);
    for (const secret of [old, fresh])
      expect(() => new Webhook(secret).verify(during.body, during.headers)).not.toThrow();
    expect(() =>
      new Webhook(`whsec_${Buffer.alloc(32, 1).toString("base64")}`).verify(during.body, during.headers),
    ).toThrow();
    expect(t.world.ctx.auditEvents("webhook.rotate_secret").at(-1)?.target_id).toBe(id);

    await advance(24 * 3600 * 1000 + 1000);
    await t.world.notify();
    await drain();
    const after = t.receiver.received.at(-1);
    expect(after?.signature.split(" ")).toHaveLength(1);
    // The t.receiver's clock did not move 24 hours, so compare signatures, not timestamps.
    const sign = (secret: string) =>
      new Webhook(secret).sign(after?.id ?? "", new Date(Number(after?.timestamp) * 1000), after?.body ?? "");
    expect(after?.signature).toBe(sign(fresh));
    expect(after?.signature).not.toBe(sign(old));
  });

  test("an overlap of 0 stops the old secret at once, and the trail says so", async () => {
    const { id, secret: old } = await freshEndpoint();
    const res = await rotate(id, { previous_secret_overlap_seconds: 0 });
    expect(res.status).toBe(200);
    const { secret: fresh, endpoint } = (await res.json()) as {
      secret: string;
      endpoint: { previous_secret_expires_at: string | null };
    };
    expect(endpoint.previous_secret_expires_at).toBeNull();
    const next = await nextSignatures();
    expect(next.signatures).toHaveLength(1);
    expect(next.verifies(fresh)).toBe(true);
    expect(next.verifies(old)).toBe(false);
    const [event] = t.world.ctx.auditEvents("webhook.rotate_secret").slice(-1);
    expect(event?.target_id).toBe(id);
    expect(JSON.parse(String(event?.params))).toEqual({ overlap_seconds: 0 });
  });

  test("a shorter overlap ends when it says", async () => {
    const { id, secret: old } = await freshEndpoint();
    const res = await rotate(id, { previous_secret_overlap_seconds: 60 });
    const { secret: fresh } = (await res.json()) as { secret: string };
    expect((await nextSignatures()).signatures).toHaveLength(2);
    await advance(61_000);
    const after = await nextSignatures();
    expect(after.signatures).toHaveLength(1);
    expect(after.verifies(fresh)).toBe(true);
    expect(after.verifies(old)).toBe(false);
  });

  test.each([
    // A JSON string holding the object (an SDK that encoded twice), sent as is.
    [JSON.stringify('{"previous_secret_overlap_seconds":0}')],
    [[{ previous_secret_overlap_seconds: 0 }]],
    ["0"],
    ["true"],
    ["null"],
  ])("a body that is no object (%j) is a 422, not the default overlap", async (body) => {
    const { id } = await freshEndpoint();
    const res = await rotate(id, body);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { detail: string }).detail).toContain("The request body as a whole");
    expect((await nextSignatures()).signatures).toHaveLength(1);
  });

  test.each([
    [{ previous_secret_overlap_seconds: -1 }],
    [{ previous_secret_overlap_seconds: 86_401 }],
    [{ previous_secret_overlap_seconds: 1.5 }],
    [{ previous_secret_overlap_seconds: "soon" }],
  ])("%j is a 422 naming the field, and the secret stays as it was", async (body) => {
    const { id, secret } = await freshEndpoint();
    const res = await rotate(id, body);
    expect(res.status).toBe(422);
    expect(JSON.stringify(await res.json())).toContain("previous_secret_overlap_seconds");
    expect((await nextSignatures()).verifies(secret)).toBe(true);
  });

  test("two rotations at once apply one after the other: a secret stopped at once stays stopped", async () => {
    for (let round = 0; round < 4; round++) {
      const { id, secret: first } = await freshEndpoint();
      const [stop, keep] = await Promise.all([rotate(id, { previous_secret_overlap_seconds: 0 }), rotate(id, {})]);
      expect([stop.status, keep.status]).toEqual([200, 200]);
      const stopped = ((await stop.json()) as { secret: string }).secret;
      const kept = ((await keep.json()) as { secret: string }).secret;
      const { signatures, verifies } = await nextSignatures();
      // The secret leaked (first) never signs again; whichever rotation came last holds.
      expect(verifies(first)).toBe(false);
      const lastWasKeep = verifies(kept);
      expect(verifies(stopped)).toBe(true);
      expect(signatures).toHaveLength(lastWasKeep ? 2 : 1);
    }
  });
});
