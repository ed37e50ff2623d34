/** IP address arithmetic shared by the webhook URL policy and the rate limiter's client keys. */

export function v4Number(address: string): number {
  return address.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

/** The eight 16-bit groups of an address `isIP` calls IPv6 (a trailing dotted IPv4 part included). */
export function v6Groups(address: string): number[] {
  let text = address.replace(/%.*$/, "");
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const n = v4Number(tail);
    text = `${text.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const groups = (part: string) => (part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16)));
  const [left = "", right] = text.split("::");
  if (right === undefined) return groups(left);
  const head = groups(left);
  const rest = groups(right);
  return [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
}

/** The IPv4 address carried in two 16-bit groups. */
export function v4Of(high: number, low: number): string {
  return `${high >>> 8}.${high & 0xff}.${low >>> 8}.${low & 0xff}`;
}
