// Unit tests for the outbound address policy: private ranges refused, DNS names resolving to them refused.
import assert from "node:assert/strict";
import type { LookupAddress } from "node:dns";
import { test } from "node:test";
import { isPrivateAddress, publicOnlyLookup } from "./address-policy.ts";

// [address, private?, why]: every special-purpose range of IANA's IPv4 and IPv6 registries, the spellings
// that reach them, and public addresses that must stay allowed.
const ADDRESS_CASES: Array<[string, boolean, string]> = [
  ["10.0.0.1", true, "RFC 1918"],
  ["10.255.255.255", true, "RFC 1918"],
  ["172.16.0.1", true, "RFC 1918"],
  ["172.31.255.254", true, "RFC 1918"],
  ["172.15.255.255", false, "just below 172.16/12"],
  ["172.32.0.1", false, "just above 172.16/12"],
  ["192.168.1.1", true, "RFC 1918"],
  ["192.169.0.1", false, "just above 192.168/16"],
  ["127.0.0.1", true, "loopback"],
  ["127.8.9.10", true, "loopback"],
  ["169.254.169.254", true, "link-local: cloud metadata"],
  ["100.64.0.1", true, "carrier-grade NAT"],
  ["100.127.255.255", true, "carrier-grade NAT"],
  ["100.128.0.1", false, "just above 100.64/10"],
  ["0.0.0.0", true, "this network"],
  ["0.1.2.3", true, "this network"],
  ["192.0.0.8", true, "IETF protocol assignments"],
  ["192.0.0.170", true, "NAT64 discovery"],
  ["192.0.2.1", true, "documentation TEST-NET-1"],
  ["198.51.100.7", true, "documentation TEST-NET-2"],
  ["203.0.113.200", true, "documentation TEST-NET-3"],
  ["192.88.99.1", true, "6to4 relay anycast"],
  ["198.18.0.1", true, "benchmarking"],
  ["198.19.255.255", true, "benchmarking"],
  ["192.31.196.1", true, "AS112"],
  ["192.175.48.1", true, "AS112"],
  ["192.52.193.1", true, "AMT"],
  ["224.0.0.1", true, "multicast"],
  ["239.255.255.250", true, "multicast"],
  ["240.0.0.1", true, "reserved"],
  ["255.255.255.255", true, "broadcast"],
  // Spellings of IPv4 that Node's URL parser, inet_aton and ipaddr.js accept.
  ["127.1", true, "loopback, two parts"],
  ["127.0.1", true, "loopback, three parts"],
  ["2130706433", true, "loopback, one number"],
  ["0x7f.1", true, "loopback, hex"],
  ["0x7f000001", true, "loopback, one hex number"],
  ["0177.0.0.1", true, "loopback, octal"],
  ["0xa9.0xfe.0xa9.0xfe", true, "metadata, hex octets"],
  ["2852039166", true, "metadata, one number"],
  ["134744072", false, "8.8.8.8, one number"],
  ["::1", true, "loopback"],
  ["[::1]", true, "loopback, bracketed as in a URL"],
  ["::", true, "unspecified"],
  ["0:0:0:0:0:0:0:1", true, "loopback, uncompressed"],
  ["fc00::1", true, "unique local"],
  ["fd12:3456:789a::1", true, "unique local"],
  ["fe80::1", true, "link-local"],
  ["fe80::1%eth0", true, "link-local with a zone id"],
  ["fe80::1%eth-0.5", true, "link-local with a zone id ipaddr.js alone would not parse"],
  ["[fe80::1%25eth0]", true, "link-local, bracketed, zone id %-encoded"],
  ["fec0::1", true, "deprecated site-local"],
  ["ff02::1", true, "multicast"],
  ["100::1", true, "discard-only"],
  ["100:0:0:1::1", true, "dummy prefix (RFC 9780)"],
  ["5f00::1", true, "SRv6 SIDs"],
  ["::ffff:10.0.0.1", true, "IPv4-mapped RFC 1918"],
  ["::FFFF:127.0.0.1", true, "IPv4-mapped loopback"],
  ["::ffff:169.254.169.254", true, "IPv4-mapped metadata"],
  ["::ffff:7f00:1", true, "IPv4-mapped loopback as the URL parser writes it"],
  ["::ffff:a9fe:a9fe", true, "IPv4-mapped metadata in hex"],
  ["[::ffff:a9fe:a9fe]", true, "IPv4-mapped metadata, bracketed"],
  ["0:0:0:0:0:ffff:7f00:1", true, "IPv4-mapped loopback, uncompressed"],
  ["::127.0.0.1", true, "IPv4-compatible (::/96) loopback"],
  ["::7f00:1", true, "IPv4-compatible loopback as the URL parser writes it"],
  ["::169.254.169.254", true, "IPv4-compatible metadata"],
  ["::a9fe:a9fe", true, "IPv4-compatible metadata in hex"],
  ["::8.8.8.8", true, "IPv4-compatible, deprecated even for a public IPv4 address"],
  ["::ffff:0:7f00:1", true, "IPv4-translated (RFC 6145) loopback"],
  ["::ffff:0:808:808", true, "IPv4-translated (RFC 6145)"],
  ["::ffff:0:169.254.169.254", true, "IPv4-translated metadata"],
  // NAT64 (RFC 6052 well-known prefix) reaches the embedded IPv4 address on IPv6-only networks with DNS64.
  ["64:ff9b::a9fe:a9fe", true, "NAT64 metadata"],
  ["64:ff9b::169.254.169.254", true, "NAT64 metadata, dotted"],
  ["64:ff9b::a00:1", true, "NAT64 RFC 1918"],
  ["64:ff9b::7f00:1", true, "NAT64 loopback"],
  ["64:ff9b:1::808:808", true, "NAT64 local-use prefix (RFC 8215)"],
  ["64:ff9b:1:a9fe:a9fe::", true, "NAT64 local-use prefix, metadata in another position"],
  ["2002:a9fe:a9fe::1", true, "6to4 with metadata embedded"],
  ["2002:7f00:1::", true, "6to4 with loopback embedded"],
  ["2002:808:808::1", true, "6to4, deprecated (RFC 7526) whatever it embeds"],
  ["2001::1", true, "Teredo"],
  ["2001:0:4136:e378:8000:63bf:3fff:fdd2", true, "Teredo (RFC 4380 example)"],
  ["2001:2::1", true, "benchmarking"],
  ["2001:3::1", true, "AMT"],
  ["2001:4:112::1", true, "AS112-v6"],
  ["2001:10::1", true, "deprecated ORCHID"],
  ["2001:20::1", true, "ORCHIDv2"],
  ["2001:30::1", true, "drone remote ID"],
  ["2001:1::1", true, "IETF protocol assignments"],
  ["2001:db8::1", true, "documentation"],
  ["2001:db8:ffff::1", true, "documentation"],
  ["3fff::1", true, "documentation (RFC 9637)"],
  ["2620:4f:8000::1", true, "AS112 direct delegation"],
  ["4000::1", true, "unassigned, outside 2000::/3"],
  ["::2", true, "IPv4-compatible ::/96"],
  ["64:ff9b::808:808", false, "NAT64 to 8.8.8.8"],
  ["64:ff9b::8.8.8.8", false, "NAT64 to 8.8.8.8, dotted"],
  ["::ffff:8.8.8.8", false, "IPv4-mapped 8.8.8.8"],
  ["::ffff:808:808", false, "IPv4-mapped 8.8.8.8 in hex"],
  ["8.8.8.8", false, "public"],
  ["1.1.1.1", false, "public"],
  ["2001:4860:4860::8888", false, "public"],
  ["[2001:4860:4860::8888]", false, "public, bracketed"],
  ["2001:4860::8888", false, "public"],
  ["2606:4700:4700::1111", false, "public"],
  ["2001:200::1", false, "public, just above 2001::/23"],
  ["2003::1", false, "public, just above 2002::/16"],
  ["3ffe:ffff::1", false, "public, below 3fff::/20"],
  // Not addresses: the DNS lookup judges what a name resolves to.
  ["not-an-ip", false, "a name"],
  ["", false, "empty"],
  ["localhost", false, "a name"],
  ["256.0.0.1", false, "not an address"],
  ["1.2.3.4.5", false, "not an address"],
  ["::ffff:127.1", false, "not an address: a short IPv4 tail"],
  ["::ffff:1.2.3.256", false, "not an address"],
  ["1::2::3", false, "not an address"],
  ["[::1", false, "not an address"],
];

for (const [address, expected, why] of ADDRESS_CASES) {
  test(`isPrivateAddress(${JSON.stringify(address)}) is ${expected}: ${why}`, () => {
    assert.equal(isPrivateAddress(address), expected);
  });
}

function lookup(hostname: string, options: { all?: boolean; family?: number }) {
  return new Promise<{
    error: NodeJS.ErrnoException | null;
    address: string | LookupAddress[];
    family?: number;
  }>((resolve) => {
    publicOnlyLookup(hostname, options, (error, address, family) => resolve({ error, address, family }));
  });
}

const LOCAL_CASES: Array<{ name: string; hostname: string; options: { all?: boolean; family?: number } }> = [
  { name: "localhost with all: true", hostname: "localhost", options: { all: true } },
  { name: "localhost without all", hostname: "localhost", options: {} },
  { name: "localhost, IPv4 only", hostname: "localhost", options: { family: 4 } },
  { name: "a loopback literal", hostname: "127.0.0.1", options: {} },
  { name: "a link-local literal, all: true", hostname: "169.254.169.254", options: { all: true } },
  { name: "an IPv6 loopback literal", hostname: "::1", options: {} },
  { name: "a short loopback spelling", hostname: "127.1", options: {} },
  { name: "an IPv4-compatible loopback literal", hostname: "::127.0.0.1", options: { all: true } },
  { name: "a 6to4 literal embedding the metadata address", hostname: "2002:a9fe:a9fe::1", options: {} },
  { name: "a NAT64 local-use literal", hostname: "64:ff9b:1::a9fe:a9fe", options: {} },
];

for (const c of LOCAL_CASES) {
  test(`publicOnlyLookup refuses ${c.name} with EPRIVATEADDRESS`, async () => {
    const { error, address } = await lookup(c.hostname, c.options);
    assert.ok(error, "an error is reported");
    assert.equal(error.code, "EPRIVATEADDRESS");
    assert.match(error.message, new RegExp(c.hostname.replace(/[.:]/g, "\\$&")));
    assert.deepEqual(address, []);
  });
}

test("publicOnlyLookup passes public literals through in both callback shapes", async () => {
  const single = await lookup("8.8.8.8", {});
  assert.equal(single.error, null);
  assert.equal(single.address, "8.8.8.8");
  assert.equal(single.family, 4);
  const all = await lookup("2001:4860::8888", { all: true });
  assert.equal(all.error, null);
  assert.deepEqual(all.address, [{ address: "2001:4860::8888", family: 6 }]);
});

test("publicOnlyLookup passes resolver errors through", async () => {
  const { error } = await lookup("no-such-host.invalid", {});
  assert.ok(error);
  assert.notEqual(error.code, "EPRIVATEADDRESS");
});
