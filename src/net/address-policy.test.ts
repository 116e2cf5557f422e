// Unit tests for the outbound address policy: private ranges refused, DNS names resolving to them refused.
import assert from "node:assert/strict";
import type { LookupAddress } from "node:dns";
import { test } from "node:test";
import { isPrivateAddress, publicOnlyLookup } from "./address-policy.ts";

const ADDRESS_CASES: Array<[string, boolean]> = [
  ["10.0.0.1", true],
  ["10.255.255.255", true],
  ["172.16.0.1", true],
  ["172.31.255.254", true],
  ["172.15.255.255", false],
  ["172.32.0.1", false],
  ["192.168.1.1", true],
  ["192.169.0.1", false],
  ["127.0.0.1", true],
  ["127.8.9.10", true],
  ["169.254.169.254", true],
  ["100.64.0.1", true],
  ["100.127.255.255", true],
  ["100.128.0.1", false],
  ["0.0.0.0", true],
  ["224.0.0.1", true],
  ["255.255.255.255", true],
  ["::1", true],
  ["::", true],
  ["fc00::1", true],
  ["fd12:3456:789a::1", true],
  ["fe80::1", true],
  ["ff02::1", true],
  ["::ffff:10.0.0.1", true],
  ["::FFFF:127.0.0.1", true],
  ["::ffff:169.254.169.254", true],
  ["::ffff:7f00:1", true], // ::ffff:127.0.0.1 as the URL parser writes it
  ["::ffff:a9fe:a9fe", true], // ::ffff:169.254.169.254 in hex form
  // NAT64 (RFC 6052 well-known prefix) reaches the embedded IPv4 address on IPv6-only networks with DNS64.
  ["64:ff9b::a9fe:a9fe", true],
  ["64:ff9b::a00:1", true],
  ["64:ff9b::808:808", false],
  ["::ffff:8.8.8.8", false],
  ["::ffff:808:808", false],
  ["8.8.8.8", false],
  ["1.1.1.1", false],
  ["203.0.113.200", false],
  ["2001:4860::8888", false],
  ["2606:4700:4700::1111", false],
  ["not-an-ip", false],
  ["", false],
  ["localhost", false],
];

for (const [address, expected] of ADDRESS_CASES) {
  test(`isPrivateAddress(${JSON.stringify(address)}) is ${expected}`, () => {
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
