// Which network addresses outbound requests may reach: public ones, unless an operator allows private ones.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import ipaddr from "ipaddr.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;

// Global unicast (RFC 4291 §2.4): every other IPv6 prefix is loopback, link-local, unique-local,
// multicast, IPv4-compatible (::/96), a translation prefix or unassigned.
const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR("2000::/3");
// IPv6 prefixes that reach the IPv4 address in their last 32 bits: IPv4-mapped (RFC 4291) and the NAT64
// well-known prefix (RFC 6052), which DNS64 hands out on IPv6-only networks.
const EMBEDS_IPV4 = [ipaddr.IPv6.parseCIDR("::ffff:0:0/96"), ipaddr.IPv6.parseCIDR("64:ff9b::/96")];

/**
 * True for an IP address outside the public unicast space: private, loopback, link-local, shared,
 * documentation, translation, tunnel or any other special-purpose range of IANA's registries (as
 * ipaddr.js names them). Takes every spelling Node or ipaddr.js accepts (`127.1`, `0x7f.1`,
 * `2130706433`, `[::1]`, `fe80::1%eth0`); a string that is not an address is not private.
 */
export function isPrivateAddress(address: string): boolean {
  const parsed = parseAddress(address);
  return parsed !== undefined && !isPublic(parsed);
}

function isPublic(address: Address): boolean {
  if (address instanceof ipaddr.IPv4) return address.range() === "unicast";
  const embedding = EMBEDS_IPV4.find((prefix) => address.match(prefix));
  if (embedding) {
    const [high = 0, low = 0] = address.parts.slice(6);
    return isPublic(new ipaddr.IPv4([high >> 8, high & 255, low >> 8, low & 255]));
  }
  // ipaddr.js names the special-purpose blocks inside 2000::/3 too: 6to4, Teredo, documentation…
  return address.match(GLOBAL_UNICAST) && address.range() === "unicast";
}

function parseAddress(text: string): Address | undefined {
  let literal = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!literal.includes(":")) return ipaddr.IPv4.isValid(literal) ? ipaddr.IPv4.parse(literal) : undefined;
  // A zone id only picks the interface of a link-local address; ipaddr.js takes only [0-9a-z] ones.
  const zone = literal.indexOf("%");
  if (zone >= 0) literal = literal.slice(0, zone);
  // ipaddr.js reads "::a.b.c.d" as IPv4-mapped, but it is IPv4-compatible (::/96): spell the tail in hex.
  const tail = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(literal);
  if (tail) {
    const octets = tail.slice(2).map(Number);
    if (octets.some((octet) => octet > 255)) return undefined;
    const [a = 0, b = 0, c = 0, d = 0] = octets;
    literal = `${tail[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  } else if (literal.includes(".")) {
    return undefined;
  }
  return ipaddr.IPv6.isValid(literal) ? ipaddr.IPv6.parse(literal) : undefined;
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
    // An answer that does not even parse is refused as well: the check fails closed.
    const refused = addresses.find((entry) => {
      const parsed = parseAddress(entry.address);
      return parsed === undefined || !isPublic(parsed);
    });
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
