import { BlockList, isIP } from "node:net";
import type { Logger } from "../lib/logger";

/** What the app asks of Bun's server: the address a request came from. */
export interface AddressingServer {
  requestIP(request: Request): { address: string } | null;
}

const FORWARDED_FOR = "x-forwarded-for";

function family(address: string): "ipv4" | "ipv6" {
  return isIP(address) === 6 ? "ipv6" : "ipv4";
}

/** `TRUSTED_PROXIES` as a lookup; entries were validated by the config (an address or a CIDR). */
export function trustedProxies(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = "", prefix] = entry.split("/");
    if (prefix === undefined) list.addAddress(address, family(address));
    else list.addSubnet(address, Number(prefix), family(address));
  }
  return list;
}

/**
 * The client's address behind trusted proxies: X-Forwarded-For read from the right (each proxy
 * appends the address it got the request from), skipping the proxies we trust; the first address
 * we do not trust is the client. Anything left of it was written by that client and proves
 * nothing. An entry that is not an address ends the walk at the last trusted hop.
 */
function forwardedClient(header: string, peer: string, trusted: BlockList): string {
  const hops = header.split(",");
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trusted.check(client, family(client))) return client;
    const hop = (hops[i] as string).trim();
    if (isIP(hop) === 0) return client;
    client = hop;
  }
  return client;
}

/**
 * `server` with `requestIP` answering the client's address rather than the last proxy's when the
 * peer is a trusted proxy: the rate limiter's anonymous keys and the audit trail's `ip` then name
 * the client. From any other peer, X-Forwarded-For is ignored (anyone can send it); the first
 * time one arrives, a warning says so, since all clients then share their proxy's address.
 * Everything else is the server's own (Elysia calls `reload` on it when routes change).
 */
export function behindProxies<S extends AddressingServer>(server: S, trusted: readonly string[], log: Logger): S {
  const list = trustedProxies(trusted);
  let warned = false;
  const requestIP = (request: Request): { address: string } | null => {
    const peer = server.requestIP(request);
    if (peer === null) return null;
    const header = request.headers.get(FORWARDED_FOR);
    if (header === null) return peer;
    if (list.check(peer.address, family(peer.address))) return { address: forwardedClient(header, peer.address, list) };
    if (!warned) {
      warned = true;
      log.warn(
        { peer: peer.address },
        "a request carries X-Forwarded-For from a peer TRUSTED_PROXIES does not list: it is ignored, so the rate limiter and the audit trail see that peer's address (set TRUSTED_PROXIES to the proxy's address if it is one)",
      );
    }
    return peer;
  };
  return new Proxy(server, {
    get(target, property) {
      if (property === "requestIP") return requestIP;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
