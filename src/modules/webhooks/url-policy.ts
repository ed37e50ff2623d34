import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { invalidField } from "../../lib/problem";

const MAX_URL_LENGTH = 2048;

const PRIVATE_V4: readonly [number, number][] = [
  [0x00000000, 8], // "this" network
  [0x0a000000, 8],
  [0x64400000, 10], // carrier-grade NAT
  [0x7f000000, 8],
  [0xa9fe0000, 16], // link-local, cloud metadata
  [0xac100000, 12],
  [0xc0000000, 24],
  [0xc0a80000, 16],
  [0xc6120000, 15], // benchmarking
  [0xe0000000, 4], // multicast
  [0xf0000000, 4], // reserved, broadcast
];

function v4Number(address: string): number {
  return address.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

/** Loopback, private, link-local, multicast and other addresses a webhook must not reach in production. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) {
    const n = v4Number(address);
    return PRIVATE_V4.some(([base, bits]) => n >>> (32 - bits) === base >>> (32 - bits));
  }
  if (family !== 6) return true;
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)?.[1];
  if (mapped) return isPrivateAddress(mapped);
  return (
    lower === "::" ||
    lower === "::1" ||
    /^f[cd]/.test(lower) || // unique local fc00::/7
    /^fe[89ab]/.test(lower) || // link-local fe80::/10
    /^ff/.test(lower) // multicast
  );
}

/** A receiver URL as stored: http(s), no credentials, no fragment. Throws 422 naming `url`. */
export function parseEndpointUrl(raw: string): URL {
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!url || raw.length > MAX_URL_LENGTH) throw invalidField("url", "url must be an absolute http or https URL.");
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalidField("url", "url must use http or https.");
  if (url.username !== "" || url.password !== "")
    throw invalidField("url", "url must not carry credentials; the signature authenticates us.");
  if (url.hash !== "") throw invalidField("url", "url must not have a fragment.");
  return url;
}

/** The addresses `url` reaches; with `allowPrivate` false, any private one refuses it. */
export async function assertPublicDestination(url: URL): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host.endsWith(".localhost"))
    throw invalidField("url", "url points at a private address, which WEBHOOK_ALLOW_PRIVATE forbids.");
  const addresses = isIP(host)
    ? [host]
    : await lookup(host, { all: true }).then(
        (found) => found.map((entry) => entry.address),
        () => {
          throw invalidField("url", `url's host ${host} does not resolve.`);
        },
      );
  if (addresses.some(isPrivateAddress))
    throw invalidField("url", "url points at a private address, which WEBHOOK_ALLOW_PRIVATE forbids.");
}
