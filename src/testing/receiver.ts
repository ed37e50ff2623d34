import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";

export interface Received {
  readonly id: string;
  readonly timestamp: string;
  readonly signature: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly at: number;
}

export interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** How the next request is answered; `n` counts requests from 1. */
  respond: (n: number) => Response | Promise<Response>;
  close(): Promise<void>;
}

/** The test certificates in `tls/`: self-signed, for `receiver.warden.invalid` and `elsewhere.warden.invalid`. */
export type TestCertificate = "receiver" | "elsewhere";

export const testCertificate = (name: TestCertificate) => ({
  cert: readFileSync(join(import.meta.dir, "tls", `${name}.cert.pem`), "utf8"),
  key: readFileSync(join(import.meta.dir, "tls", `${name}.key.pem`), "utf8"),
});

/**
 * A webhook receiver on a loopback port that records every request, answering 204 unless told
 * otherwise; over HTTPS with `certificate`.
 */
export function startReceiver(path = "/hooks", certificate?: TestCertificate): Receiver {
  const received: Received[] = [];
  const receiver: Receiver = {
    url: "",
    received,
    respond: () => new Response(null, { status: 204 }),
    async close() {
      await server.stop(true);
    },
  };
  const server: Server<unknown> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    ...(certificate ? { tls: testCertificate(certificate) } : {}),
    async fetch(request) {
      const headers = Object.fromEntries(request.headers);
      received.push({
        id: headers["webhook-id"] ?? "",
        timestamp: headers["webhook-timestamp"] ?? "",
        signature: headers["webhook-signature"] ?? "",
        headers,
        body: await request.text(),
        at: Date.now(),
      });
      return receiver.respond(received.length);
    },
  });
  return Object.assign(receiver, { url: `${certificate ? "https" : "http"}://127.0.0.1:${server.port}${path}` });
}

/** Receivers that hold every answer until `release()` (then 204), as a hanging receiver does until its timeout. */
export function heldReceivers(count: number): { receivers: Receiver[]; release: () => void } {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const receivers = Array.from({ length: count }, () => {
    const receiver = startReceiver();
    receiver.respond = async () => {
      await held;
      return new Response(null, { status: 204 });
    };
    return receiver;
  });
  return { receivers, release: () => release() };
}
