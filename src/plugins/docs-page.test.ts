import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { renderPage } from "../testing/browser";
import { openBrowser } from "../testing/browser-session";
import { startServer, type TestServer } from "../testing/server";

/** The Swagger page and its assets (the document it shows: docs.test.ts). */
let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.stop());

describe("Swagger UI", () => {
  test("the page should load only local assets", async () => {
    const res = await server.fetch("/swagger");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/html");
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script>[^<]/); // no inline script: the CSP forbids it
    for (const asset of ["swagger-ui-bundle.js", "swagger-ui.css", "init.js", "favicon-32x32.png"]) {
      expect(html).toContain(`/swagger/assets/${asset}`);
      const served = await server.fetch(`/swagger/assets/${asset}`);
      expect(served.status).toBe(200);
      expect((await served.arrayBuffer()).byteLength).toBeGreaterThan(50);
    }
    // A pasted token must not outlive the tab in localStorage.
    expect(await (await server.fetch("/swagger/assets/init.js")).text()).toContain("persistAuthorization: false");
    expect((await server.fetch("/swagger/assets/../../package.json")).status).toBe(404);
    expect((await server.fetch("/swagger/assets/index.html")).status).toBe(404);
  });

  test("should render in a browser with no internet, under the CSP", async () => {
    const { dom, console } = await renderPage(`${server.url}/swagger`);
    expect(console).not.toContain("Content Security Policy");
    expect(dom).toContain("Warden API");
    for (const path of ["/health", "/ready", "/metrics"]) {
      expect(dom).toContain(`class="opblock-summary-path" data-path="${path}"`);
    }
    // A headless Chromium start: seconds on a busy machine.
  }, 30_000);

  test("should log no error in the browser's console, and fill in a client_credentials token request", async () => {
    const browser = await openBrowser();
    try {
      const failed: string[] = [];
      browser.page.on("response", (res) => {
        if (res.status() >= 400) failed.push(`${res.status()} ${res.url()}`);
      });
      await browser.page.goto(`${server.url}/swagger`, { waitUntil: "networkidle0" });
      // The page names its own icon: the browser would otherwise ask for /favicon.ico, a 404.
      expect(failed).toEqual([]);
      const token = "#operations-auth-postV1AuthToken";
      await browser.page.click(`${token} .opblock-summary-control`);
      await (await browser.page.waitForSelector(`${token} .try-out__btn`))?.click();
      await browser.page.waitForSelector(`${token} textarea.body-param__text`);
      const filled = await browser.page.$eval(`${token} textarea.body-param__text`, (area) => area.value);
      expect(JSON.parse(filled)).toEqual({ grant_type: "client_credentials", client_secret: expect.any(String) });
      expect(browser.problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 30_000);
});
