import { describe, expect, test } from "bun:test";
import { HttpProblem } from "../../lib/problem";
import {
  assertPublicDestination,
  destinationsOf,
  isPrivateAddress,
  parseEndpointUrl,
  pinnedTo,
  type Resolver,
} from "./url-policy";

describe("receiver URL policy", () => {
  test("private, loopback, link-local and multicast addresses are recognised", () => {
    for (const address of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "::1",
      "::",
      "fd00::1",
      "fe80::1",
      "::ffff:127.0.0.1",
      "ff02::1",
      // IPv4 carried in IPv6, in the forms a URL parser writes them in.
      "::ffff:7f00:1",
      "::ffff:a9fe:a9fe",
      "0:0:0:0:0:ffff:a00:1",
      "::127.0.0.1",
      "::7f00:1",
      "::ffff:0:7f00:1",
      "64:ff9b::7f00:1",
      "64:ff9b:1::1",
      "2002:7f00:1::",
      "2001:0:4136:e378::1",
      "2001:db8::1",
      "fec0::1",
      "100::1",
      "fe80::1%eth0",
      // Not global unicast, or a special-purpose block inside it.
      "::ffff:1:7f00:1",
      "1::",
      "5f00::1",
      "3fff::1",
      "2001:10::1",
      "192.0.2.1",
      "198.51.100.7",
      "203.0.113.9",
    ])
      expect({ address, private: isPrivateAddress(address) }).toEqual({ address, private: true });
    for (const address of [
      "8.8.8.8",
      "172.32.0.1",
      "1.1.1.1",
      "2606:4700::1111",
      "::ffff:8.8.8.8",
      "::ffff:808:808",
      "64:ff9b::808:808",
      "2002:808:808::1",
      "2a00:1450:4001::200e",
      "2003:de::1",
      "3ffe:1::1",
    ])
      expect({ address, private: isPrivateAddress(address) }).toEqual({ address, private: false });
  });

  test("a URL's IPv6 host that carries a private IPv4 address is refused, however it is written", async () => {
    for (const raw of ["http://[::ffff:127.0.0.1]/x", "http://[::ffff:7f00:1]/x", "http://[64:ff9b::a9fe:a9fe]/"]) {
      const url = parseEndpointUrl(raw);
      await expect(assertPublicDestination(url)).rejects.toBeInstanceOf(HttpProblem);
    }
  });

  test("only http(s) URLs without credentials or fragments are accepted", () => {
    expect(parseEndpointUrl("https://hooks.example.com/in?x=1").host).toBe("hooks.example.com");
    for (const bad of [
      "ftp://example.com/",
      "javascript:alert(1)",
      "https://user:pw@example.com/",
      "not a url",
      "https://example.com/#frag",
      `https://example.com/${"a".repeat(2100)}`,
      // Under the limit as sent, over it as stored: each "€" is percent-encoded into nine characters.
      `https://93.184.216.34/${"€".repeat(2000)}`,
    ]) {
      let error: unknown;
      try {
        parseEndpointUrl(bad);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(HttpProblem);
      expect((error as HttpProblem).status).toBe(422);
      expect((error as HttpProblem).options.errors?.[0]?.field).toBe("url");
    }
  });

  test("a URL is kept as parsed, and its limit holds for what is kept", () => {
    const url = parseEndpointUrl(`https://93.184.216.34/${"€".repeat(200)}`);
    expect(url.href.length).toBe("https://93.184.216.34/".length + 200 * 9);
    expect(() => parseEndpointUrl(`https://93.184.216.34/${"€".repeat(226)}`)).toThrow(/at most 2048 characters/);
  });

  test("loopback names and literals are refused when private destinations are not allowed", async () => {
    for (const url of ["http://localhost:9/", "http://127.0.0.1/", "http://[::1]:8080/", "http://api.localhost/"])
      await expect(assertPublicDestination(new URL(url))).rejects.toBeInstanceOf(HttpProblem);
    await expect(assertPublicDestination(new URL("https://93.184.215.14/"))).resolves.toBeUndefined();
  });

  test("a name resolving privately and one not resolving are refused alike: which internal names exist is not told", async () => {
    const names: Record<string, string[]> = {
      "vm.internal": ["10.0.0.7"],
      "mixed.example": ["93.184.215.14", "127.0.0.1"],
    };
    const resolve: Resolver = async (host) => {
      const found = names[host];
      if (!found) throw new Error(`ENOTFOUND ${host}`);
      return found;
    };
    const refusal = (host: string) =>
      destinationsOf(new URL(`https://${host}/hook`), false, resolve).then(
        () => "accepted",
        (error: HttpProblem) => error.detail.replace(host, "<host>"),
      );
    const told = new Set(await Promise.all(["vm.internal", "mixed.example", "nowhere.internal"].map(refusal)));
    expect([...told]).toEqual(["url's host <host> does not resolve to a public address."]);
    // A private IP written in the URL is the tenant's own words: that one says why.
    expect(await refusal("10.0.0.7")).toContain("private address");
  });

  test("a URL pinned to an address keeps its name for Host and TLS, or is refused when the address cannot be written in it", () => {
    const pinned = pinnedTo(new URL("https://hooks.example.com:8443/in?x=1"), "2001:db8::1");
    expect(pinned.target.href).toBe("https://[2001:db8::1]:8443/in?x=1");
    expect(pinned).toMatchObject({ host: "hooks.example.com:8443", tls: { serverName: "hooks.example.com" } });
    // An IP in the URL is its own name: no server name (SNI takes none).
    expect(pinnedTo(new URL("https://93.184.215.14/in"), "93.184.215.14").tls).toEqual({});
    // URL's setter ignores an address with a zone, which would leave the name for fetch to resolve.
    expect(() => pinnedTo(new URL("http://hooks.example.com/in"), "fe80::1%eth0")).toThrow("by address");
  });
});
