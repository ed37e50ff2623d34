import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { v4Number, v4Of, v6Groups } from "../../lib/ip-address";
import { invalidField } from "../../lib/problem";

const MAX_URL_LENGTH = 2048;

const PRIVATE_V4: readonly [number, number][] = [
  [0x00000000, 8], // "this" network
  [0x0a000000, 8],
  [0x64400000, 10], // carrier-grade NAT
  [0x7f000000, 8],
  [0xa9fe0000, 16], // link-local, cloud metadata
  [0xac100000, 12],
  [0xc0000000, 24], // IETF protocol assignments
  [0xc0000200, 24], // TEST-NET-1
  [0xc0586300, 24], // 6to4 relay anycast
  [0xc0a80000, 16],
  [0xc6120000, 15], // benchmarking
  [0xc6336400, 24], // TEST-NET-2
  [0xcb007100, 24], // TEST-NET-3
  [0xe0000000, 4], // multicast
  [0xf0000000, 4], // reserved, broadcast
];

/**
 * Loopback, private, link-local, multicast and other addresses a webhook must not reach in
 * production. IPv6 forms that carry an IPv4 address (mapped, compatible, translated, NAT64,
 * 6to4) are judged by that address, whichever way they are written: a URL parser writes
 * `[::ffff:127.0.0.1]` as `[::ffff:7f00:1]`. Any other IPv6 address must be global unicast.
 */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) {
    const n = v4Number(address);
    return PRIVATE_V4.some(([base, bits]) => n >>> (32 - bits) === base >>> (32 - bits));
  }
  if (family !== 6) return true;
  const g = v6Groups(address.toLowerCase());
  const zero = (from: number, to: number) => g.slice(from, to).every((group) => group === 0);
  const [first = 0, second = 0, , , fifth = 0, sixth = 0, seventh = 0, eighth = 0] = g;
  if (zero(0, 6) && seventh === 0 && eighth <= 1) return true; // :: and ::1
  if (zero(0, 5) && (sixth === 0xffff || sixth === 0)) return isPrivateAddress(v4Of(seventh, eighth)); // mapped, compatible
  if (zero(0, 4) && fifth === 0xffff && sixth === 0) return isPrivateAddress(v4Of(seventh, eighth)); // translated
  if (first === 0x64 && second === 0xff9b) return zero(2, 6) ? isPrivateAddress(v4Of(seventh, eighth)) : true; // NAT64
  if (first === 0x2002) return isPrivateAddress(v4Of(second, g[2] ?? 0)); // 6to4
  // Everything else must be global unicast (2000::/3), outside its special-purpose blocks.
  if ((first & 0xe000) !== 0x2000) return true;
  return (
    (first === 0x2001 && second < 0x200) || // 2001::/23: Teredo, benchmarking, ORCHID and other IANA blocks
    (first === 0x2001 && second === 0xdb8) || // documentation
    (first === 0x3fff && second < 0x1000) // 3fff::/20, documentation
  );
}

/** A receiver URL as stored: http(s), no credentials, no fragment. Throws 422 naming `url`. */
export function parseEndpointUrl(raw: string): URL {
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!url) throw invalidField("url", "url must be an absolute http or https URL.");
  // What is stored and sent to is the parsed URL: percent-encoding makes "€" nine characters.
  if (url.href.length > MAX_URL_LENGTH)
    throw invalidField(
      "url",
      `url must be at most ${MAX_URL_LENGTH} characters once percent-encoded; this one is ${url.href.length}.`,
    );
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalidField("url", "url must use http or https.");
  if (url.username !== "" || url.password !== "")
    throw invalidField("url", "url must not carry credentials; the signature authenticates us.");
  if (url.hash !== "") throw invalidField("url", "url must not have a fragment.");
  if (url.port === "0") throw invalidField("url", "url's port must be from 1 to 65535.");
  // The URL parser drops them (a trailing NUL, a tab): what is stored would not be what was sent.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
  if (/[\u0000-\u0020\u007F]/.test(raw))
    throw invalidField("url", "url must not contain spaces or control characters.");
  return url;
}

/** Every address a host name resolves to (node:dns by default; tests give their own). */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = (host) =>
  lookup(host, { all: true }).then((found) => found.map((entry) => entry.address));

const refusedPrivate = () =>
  invalidField("url", "url points at a private address, which WEBHOOK_ALLOW_PRIVATE forbids.");

/**
 * The addresses to connect to for `url`, to try in turn: its IP, or those its name resolves to.
 * With `allowPrivate` false, a name of localhost or any private address among them refuses it.
 */
export async function destinationsOf(url: URL, allowPrivate: boolean, resolve = systemResolver): Promise<string[]> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!allowPrivate && (host === "localhost" || host.endsWith(".localhost"))) throw refusedPrivate();
  const literal = isIP(host) !== 0;
  // Where private targets are forbidden, a name that resolves only privately and one that does
  // not resolve get the same answer: two would tell a tenant which internal names exist.
  const unresolved = () =>
    literal || allowPrivate
      ? invalidField("url", `url's host ${host} does not resolve.`)
      : invalidField("url", `url's host ${host} does not resolve to a public address.`);
  const addresses = literal
    ? [host]
    : await resolve(host).then(
        (found) => found,
        () => {
          throw unresolved();
        },
      );
  if (addresses.length === 0) throw unresolved();
  if (!allowPrivate && addresses.some(isPrivateAddress)) throw literal ? refusedPrivate() : unresolved();
  return [...new Set(addresses)];
}

/** Refuses `url` when it reaches a private address (WEBHOOK_ALLOW_PRIVATE=false). */
export async function assertPublicDestination(url: URL, resolve = systemResolver): Promise<void> {
  await destinationsOf(url, false, resolve);
}

/**
 * `url` with its host replaced by `address`, the Host header it had, and for a name the TLS
 * server name to send and verify the certificate against: the request then goes to the address
 * that was checked, not to whatever a second lookup answers (DNS rebinding). A certificate alone
 * does not stop that: a TLS connection to an internal port is made before it fails to verify.
 */
export function pinnedTo(url: URL, address: string): { target: URL; host: string; tls: { serverName?: string } } {
  const target = new URL(url);
  target.hostname = isIP(address) === 6 ? `[${address}]` : address;
  const literal = url.hostname.startsWith("[") || isIP(url.hostname) !== 0;
  // The setter ignores what it cannot take (an IPv6 address with a zone, `fe80::1%eth0`), which
  // would leave the name for fetch to resolve again.
  if (!literal && target.hostname === url.hostname) throw new Error(`cannot connect to ${address} by address`);
  return { target, host: url.host, tls: literal ? {} : { serverName: url.hostname } };
}
