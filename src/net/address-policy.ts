// Which network addresses outbound requests may reach: public ones, unless an operator allows private ones.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { BlockList, isIP } from "node:net";

const privateRanges = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], // "this" network
  ["10.0.0.0", 8], // RFC 1918
  ["100.64.0.0", 10], // carrier-grade NAT, RFC 6598
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata services live here)
  ["172.16.0.0", 12], // RFC 1918
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16], // RFC 1918
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  privateRanges.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
] as const) {
  privateRanges.addSubnet(network, prefix, "ipv6");
}

// IPv6 prefixes whose last 32 bits are an IPv4 address that the packet reaches.
const embedsIpv4 = new BlockList();
embedsIpv4.addSubnet("::ffff:0:0", 96, "ipv6"); // IPv4-mapped
embedsIpv4.addSubnet("64:ff9b::", 96, "ipv6"); // NAT64, RFC 6052

/** True for an IP address in a private, loopback, link-local or otherwise non-public range. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return privateRanges.check(address, "ipv4");
  if (family !== 6) return false;
  if (embedsIpv4.check(address, "ipv6")) return privateRanges.check(lastIpv4(address), "ipv4");
  return privateRanges.check(address, "ipv6");
}

// The IPv4 address in the last 32 bits of an IPv6 address ("::ffff:10.0.0.1" or "64:ff9b::a00:1").
function lastIpv4(address: string): string {
  const tail = address.slice(address.lastIndexOf(":") + 1);
  if (tail.includes(".")) return tail;
  const groups = address.split(":");
  const low = Number.parseInt(groups.at(-1) || "0", 16);
  const high = groups.length >= 2 && !address.endsWith("::") ? Number.parseInt(groups.at(-2) || "0", 16) : 0;
  return [high >> 8, high & 255, low >> 8, low & 255].join(".");
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `dns.lookup` for `net.connect` that fails when a name resolves to a private address, so a DNS
 * name cannot smuggle a request to an internal host.
 */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const refused = addresses.find((entry) => isPrivateAddress(entry.address));
    if (refused) {
      const denied: NodeJS.ErrnoException = new Error(
        `${hostname} resolves to private address ${refused.address}`,
      );
      denied.code = "EPRIVATEADDRESS";
      return callback(denied, []);
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (!first)
      return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), []);
    callback(null, first.address, first.family);
  });
}
