import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { requireTool } from "./tools";

export interface BrowserSession {
  readonly page: Page;
  /** Console errors, page errors and CSP reports seen so far. */
  readonly problems: string[];
  close(): Promise<void>;
}

/** Headless Chromium (Debian's package) driven over the DevTools protocol, for pages that need clicks. */
export async function openBrowser(): Promise<BrowserSession> {
  const browser: Browser = await puppeteer.launch({
    executablePath: requireTool("chromium", "chromium"),
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--disable-background-networking",
    ],
  });
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" || /Content Security Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(String(error)));
  return { page, problems, close: () => browser.close() };
}
