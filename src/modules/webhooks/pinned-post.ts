import { withSignal } from "../../lib/deadline";
import { destinationsOf, pinnedTo, type Resolver } from "./url-policy";

export interface PinnedPost {
  readonly body: string;
  readonly headers: Record<string, string>;
  /** One deadline for everything: the name's lookup and every address tried. */
  readonly signal: AbortSignal;
  readonly allowPrivate: boolean;
  readonly resolve: Resolver;
  /** Certificates trusted besides the system's. */
  readonly ca?: string[];
}

/**
 * POSTs to `url` at the addresses its name resolves to, each checked (a name may resolve
 * elsewhere now than when it was registered) and each connected to as it is: fetch resolving the
 * name again could be answered with an internal address (DNS rebinding). The name stays the
 * `Host`, and over HTTPS the server name the certificate must match. The addresses are tried in
 * turn, as fetch would try a name's (a receiver behind several, one down); the first that
 * answers, whatever it answers, decides. No redirects are followed.
 */
export async function pinnedPost(url: URL, post: PinnedPost): Promise<Response> {
  const addresses = await withSignal(destinationsOf(url, post.allowPrivate, post.resolve), post.signal);
  const to = (address: string) => {
    const pinned = pinnedTo(url, address);
    return fetch(pinned.target, {
      method: "POST",
      body: post.body,
      redirect: "manual",
      signal: post.signal,
      ...(url.protocol === "https:" ? { tls: { ...pinned.tls, ...(post.ca ? { ca: post.ca } : {}) } } : {}),
      headers: { host: pinned.host, ...post.headers },
    });
  };
  for (const [i, address] of addresses.entries()) {
    try {
      return await to(address);
    } catch (error) {
      if (post.signal.aborted || i === addresses.length - 1) throw error;
    }
  }
  throw new Error("no address to send to");
}
