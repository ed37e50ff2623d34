import { describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { newWebhookSecret, secretBytes, sign, signatureHeader } from "./signing";

describe("Standard Webhooks signing", () => {
  test("matches the specification's published test vector", () => {
    // From the Standard Webhooks specification's reference tests.
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const signature = sign(secretBytes(secret), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    expect(signature).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  test("the official library verifies our header with either secret during a rotation", () => {
    const [current, previous] = [newWebhookSecret(), newWebhookSecret()];
    const body = JSON.stringify({ type: "alert.fired", data: { n: 1 } });
    const timestamp = Math.floor(Date.now() / 1000);
    const header = signatureHeader([secretBytes(current), secretBytes(previous)], "msg_1", timestamp, body);
    const headers = { "webhook-id": "msg_1", "webhook-timestamp": String(timestamp), "webhook-signature": header };
    expect(header.split(" ")).toHaveLength(2);
    for (const secret of [current, previous])
      expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).toThrow();
    expect(() => new Webhook(current).verify(`${body} `, headers)).toThrow();
  });

  test("secrets are whsec_ and 32 random bytes", () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(secretBytes(secret)).toHaveLength(32);
    expect(newWebhookSecret()).not.toBe(secret);
  });
});
