import { afterAll, beforeAll, expect, test } from "bun:test";
import { type BrowserSession, openBrowser } from "../../testing/browser-session";
import { createAdminWithCli, passwordLogin } from "../../testing/cli";
import { waitFor } from "../../testing/ports";
import { type Receiver, startReceiver } from "../../testing/receiver";
import { startServer, type TestServer } from "../../testing/server";

let server: TestServer;
let receiver: Receiver;
let browser: BrowserSession;

beforeAll(async () => {
  receiver = startReceiver();
  // The first attempt fails; the next one (after an hour, or a retry) succeeds.
  receiver.respond = (n) => new Response(n === 1 ? "down for maintenance" : null, { status: n === 1 ? 500 : 204 });
  server = await startServer({ env: { RATE_LIMIT_ENABLED: "false", WEBHOOK_RETRY_SCHEDULE: "0,3600" } });
  browser = await openBrowser();
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await receiver?.close();
});

test("an admin signs in, sees a failed delivery, presses retry and sees it delivered", async () => {
  const admin = await createAdminWithCli(server.dataDir, { tenant: "acme", email: "ops@acme.test" });
  const token = await passwordLogin(server, admin);
  const json = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  expect(
    (
      await server.fetch("/v1/webhooks/endpoints", {
        method: "POST",
        headers: json,
        body: JSON.stringify({ url: receiver.url }),
      })
    ).status,
  ).toBe(201);
  const sent = await server.fetch("/v1/notifications", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ recipients: { user_ids: [admin.user_id] }, type: "alert.fired", title: "Disk full" }),
  });
  expect(sent.status).toBe(201);
  let deliveryId = "";
  await waitFor(
    async () => {
      const res = await server.fetch("/v1/webhooks/deliveries?status=failed", { headers: json });
      deliveryId = ((await res.json()) as { deliveries: { id: string }[] }).deliveries[0]?.id ?? "";
      return deliveryId !== "";
    },
    10_000,
    "the first attempt to fail",
  );

  const { page, problems } = browser;
  await page.goto(`${server.url}/admin`);
  await page.type("#token", token);
  await page.click("#signin button[type=submit]");

  const row = `#failures tbody tr[data-id="${deliveryId}"]`;
  await page.waitForSelector(row, { timeout: 10_000 });
  expect(await page.$eval("#who", (el) => el.textContent)).toBe(`${admin.user_id} · tenant acme`);
  expect(await page.$eval(`${row} .status`, (el) => el.textContent)).toBe("failed");
  expect(await page.$eval(row, (el) => el.textContent)).toContain("receiver answered 500");
  expect(await page.$eval('#queue [data-status="failed"] strong', (el) => el.textContent)).toBe("1");
  // The audit list loads after the deliveries.
  await page.waitForFunction(() => document.querySelector("#audit tbody")?.textContent?.includes("webhook.create"), {
    timeout: 10_000,
  });

  await page.click(`${row} button`);
  await page.waitForFunction(
    (selector) =>
      !document.querySelector(selector) &&
      document.querySelector('#queue [data-status="delivered"] strong')?.textContent === "1",
    { timeout: 10_000 },
    row,
  );
  await page.waitForFunction(() => document.querySelector("#audit tbody")?.textContent?.includes("delivery.retry"), {
    timeout: 10_000,
  });
  expect(receiver.received).toHaveLength(2);
  expect(receiver.received[1]?.id).toBe(receiver.received[0]?.id ?? "");
  const after = await server.fetch(`/v1/webhooks/deliveries/${deliveryId}`, { headers: json });
  expect(((await after.json()) as { delivery: { status: string } }).delivery.status).toBe("delivered");
  expect(problems.join("\n")).toBe("");
}, 60_000);

test("a token that is not an admin's is turned away with a message", async () => {
  const viewer = await createAdminWithCli(server.dataDir, {
    tenant: "acme",
    email: "viewer@acme.test",
    role: "viewer",
  });
  const token = await passwordLogin(server, viewer);
  const { page } = browser;
  await page.goto(`${server.url}/admin`);
  await page.evaluate(() => sessionStorage.clear());
  await page.reload();
  await page.type("#token", token);
  await page.click("#signin button[type=submit]");
  await page.waitForFunction(() => (document.querySelector("#signin-error")?.textContent ?? "") !== "", {
    timeout: 10_000,
  });
  expect(await page.$eval("#signin-error", (el) => el.textContent)).toContain("for admins");
  expect(await page.$eval("#dashboard", (el) => (el as HTMLElement).hidden)).toBe(true);
  const res = await server.fetch("/admin");
  expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
}, 30_000);

test("without its script the sign-in form cannot be sent, and would never put the token in a URL", async () => {
  const { page } = browser;
  await page.setJavaScriptEnabled(false);
  try {
    await page.goto(`${server.url}/admin`);
    expect(await page.$eval("#signin", (form) => (form as HTMLFormElement).method)).toBe("post");
    expect(await page.$eval("#signin button[type=submit]", (button) => (button as HTMLButtonElement).disabled)).toBe(
      true,
    );
    await page.type("#token", "wdn_not_a_real_key");
    await page.keyboard.press("Enter");
    await Bun.sleep(300);
    expect(page.url()).not.toContain("wdn_not_a_real_key");
  } finally {
    await page.setJavaScriptEnabled(true);
  }
}, 30_000);

test("signing out ends the session the dashboard opened with an API key, not a pasted token's", async () => {
  const admin = await createAdminWithCli(server.dataDir, { tenant: "acme", email: "keys@acme.test" });
  const { page } = browser;
  const signIn = async (secret: string) => {
    await page.goto(`${server.url}/admin`);
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await page.type("#token", secret);
    await page.click("#signin button[type=submit]");
    await page.waitForFunction(() => !(document.querySelector("#dashboard") as HTMLElement).hidden, {
      timeout: 10_000,
    });
    return (await page.evaluate(() => sessionStorage.getItem("warden.dashboard.token"))) as string;
  };
  const me = async (token: string) =>
    (await server.fetch("/v1/auth/me", { headers: { authorization: `Bearer ${token}` } })).status;

  const exchanged = await signIn(admin.api_key);
  expect(await me(exchanged)).toBe(200);
  await page.click("#signout");
  await waitFor(async () => (await me(exchanged)) === 401, 10_000, "the dashboard's session to end");

  const pasted = await passwordLogin(server, admin);
  expect(await signIn(pasted)).toBe(pasted);
  await page.click("#signout");
  await Bun.sleep(300);
  expect(await me(pasted)).toBe(200);
}, 30_000);
