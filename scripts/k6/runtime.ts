/**
 * What a k6 script imports (`k6`, `k6/http`, `k6/execution`) and the globals it reads (`__ENV`,
 * `open`), as far as our scripts use them, with every request and check recorded as k6's
 * metrics would. Requests block, as in k6, through `SyncFetch`.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { SyncAnswer, SyncFetch } from "./sync-fetch";

const REQUEST_TIMEOUT_MS = 60_000;

export interface Sample {
  method: string;
  url: string;
  tags: Record<string, string>;
  status: number;
  error: string;
  ms: number;
}

export interface CheckTally {
  passes: number;
  fails: number;
}

interface Params {
  headers?: Record<string, string>;
  tags?: Record<string, string>;
}

type Body = string | Record<string, string> | null | undefined;

export class K6Runtime {
  readonly samples: Sample[] = [];
  readonly checks = new Map<string, CheckTally>();
  readonly scenario = { name: "default", iterationInTest: 0 };
  readonly vu = { idInTest: 1 };

  constructor(
    private readonly fetcher: SyncFetch,
    private readonly scriptDir: string,
  ) {}

  /** The module namespaces a script may import, by specifier. */
  modules(): Record<string, Record<string, unknown>> {
    const http = {
      get: (url: string, params?: Params) => this.request("GET", url, null, params),
      post: (url: string, body?: Body, params?: Params) => this.request("POST", url, body, params),
      put: (url: string, body?: Body, params?: Params) => this.request("PUT", url, body, params),
      patch: (url: string, body?: Body, params?: Params) => this.request("PATCH", url, body, params),
      del: (url: string, body?: Body, params?: Params) => this.request("DELETE", url, body, params),
      request: (method: string, url: string, body?: Body, params?: Params) => this.request(method, url, body, params),
    };
    const execution = { scenario: this.scenario, vu: this.vu };
    return {
      k6: { check: this.check, fail, sleep: (seconds: number) => Bun.sleepSync(seconds * 1000) },
      "k6/http": { default: http, ...http },
      "k6/execution": { default: execution, ...execution },
    };
  }

  /** k6's init-context `open`: a file relative to the script. */
  readonly open = (path: string): string => readFileSync(resolve(this.scriptDir, path), "utf8");

  private readonly check = (value: unknown, sets: Record<string, (value: unknown) => unknown>): boolean => {
    let all = true;
    for (const [name, predicate] of Object.entries(sets)) {
      const passed = Boolean(predicate(value));
      const tally = this.checks.get(name) ?? { passes: 0, fails: 0 };
      if (passed) tally.passes++;
      else tally.fails++;
      this.checks.set(name, tally);
      all &&= passed;
    }
    return all;
  };

  private request(method: string, url: string, body: Body, params: Params = {}): Response6 {
    const headers = { ...params.headers };
    let text: string | undefined;
    if (typeof body === "string") text = body;
    else if (body) {
      // k6 sends an object body as a form.
      text = new URLSearchParams(body).toString();
      headers["content-type"] ??= "application/x-www-form-urlencoded";
    }
    const answer = this.fetcher.request({ method, url, headers, body: text, timeoutMs: REQUEST_TIMEOUT_MS });
    this.samples.push({
      method,
      url,
      tags: { ...params.tags },
      status: answer.status,
      error: answer.error,
      ms: answer.ms,
    });
    return new Response6(answer);
  }
}

function fail(message = ""): never {
  throw new Error(message);
}

/** k6's Response: `json(selector)` takes the GJSON paths our scripts use (`a.b`, `list.#`, `list.0`). */
export class Response6 {
  readonly status: number;
  readonly body: string;
  readonly error: string;
  readonly headers: Record<string, string>;
  readonly timings: { duration: number };

  constructor(answer: SyncAnswer) {
    this.status = answer.status;
    this.body = answer.body;
    this.error = answer.error;
    this.timings = { duration: answer.ms };
    this.headers = Object.fromEntries(answer.headers.map(([name, value]) => [canonical(name), value]));
  }

  json(selector?: string): unknown {
    const document: unknown = JSON.parse(this.body);
    if (selector === undefined) return document;
    let at: unknown = document;
    for (const part of selector.split(".")) {
      if (/[*?|@#\\]/.test(part) && !(part === "#" && Array.isArray(at))) {
        throw new Error(`json("${selector}"): the shim reads plain paths and a final .# only`);
      }
      if (part === "#") return (at as unknown[]).length;
      if (at === null || typeof at !== "object") return undefined;
      at = (at as Record<string, unknown>)[part];
    }
    return at;
  }
}

/** k6 shows response header names in canonical MIME form (`Content-Type`). */
function canonical(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase());
}
