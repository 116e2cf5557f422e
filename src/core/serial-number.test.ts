// Unit tests for serial_number scope (prefix, UTC day) and format `<P>-<NNNN>-<HHHHHHHH>` (SPEC §3).
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatSerialNumber, serialReceivedAt, serialScope } from "./serial-number.ts";

const SCOPE_CASES: Array<{
  name: string;
  eventPrefix: string | null;
  senderKey: string;
  receivedAt: number;
  expected: { prefix: string; day: string };
}> = [
  {
    name: "event prefix wins over the sender_key",
    eventPrefix: "Uae87c693e28",
    senderKey: "1656168303",
    receivedAt: Date.UTC(2021, 9, 1, 7, 10, 51),
    expected: { prefix: "Uae87c693e28", day: "2021-10-01" },
  },
  {
    name: "no event prefix: sender_key (shorter than 12)",
    eventPrefix: null,
    senderKey: "1656168303",
    receivedAt: Date.UTC(2021, 9, 1),
    expected: { prefix: "1656168303", day: "2021-10-01" },
  },
  {
    name: "no event prefix: first 12 characters of a long sender_key",
    eventPrefix: null,
    senderKey: "123456789012345678",
    receivedAt: Date.UTC(2021, 9, 1),
    expected: { prefix: "123456789012", day: "2021-10-01" },
  },
  {
    name: "last millisecond of a UTC day",
    eventPrefix: "Uae87c693e28",
    senderKey: "1656168303",
    receivedAt: Date.UTC(2024, 1, 29, 23, 59, 59, 999),
    expected: { prefix: "Uae87c693e28", day: "2024-02-29" },
  },
  {
    name: "first millisecond of the next UTC day",
    eventPrefix: "Uae87c693e28",
    senderKey: "1656168303",
    receivedAt: Date.UTC(2024, 2, 1, 0, 0, 0, 0),
    expected: { prefix: "Uae87c693e28", day: "2024-03-01" },
  },
  {
    name: "UTC, not local time: 08:59 in Seoul is still the previous UTC day",
    eventPrefix: "C1234567890a",
    senderKey: "1656168303",
    receivedAt: Date.parse("2024-05-02T08:59:00+09:00"),
    expected: { prefix: "C1234567890a", day: "2024-05-01" },
  },
];

for (const c of SCOPE_CASES) {
  test(`serialScope: ${c.name}`, () => {
    assert.deepEqual(serialScope(c.eventPrefix, c.senderKey, c.receivedAt), c.expected);
  });
}

// The suite runs with TZ=Asia/Seoul, but must catch a day computed in local time under any TZ, UTC included.
test("serialScope: the day is the UTC day whatever the process's time zone", () => {
  const zone = process.env.TZ;
  try {
    for (const tz of ["UTC", "Asia/Seoul", "America/Los_Angeles", "Pacific/Kiritimati"]) {
      process.env.TZ = tz;
      for (const c of SCOPE_CASES) {
        assert.deepEqual(
          serialScope(c.eventPrefix, c.senderKey, c.receivedAt),
          c.expected,
          `${tz}: ${c.name}`,
        );
      }
    }
  } finally {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  }
});

test("serialScope: 23:59:59.999 and 00:00:00.000 UTC fall in different counter scopes", () => {
  const before = serialScope("Uae87c693e28", "1", Date.UTC(2030, 11, 31, 23, 59, 59, 999));
  const after = serialScope("Uae87c693e28", "1", Date.UTC(2031, 0, 1));
  assert.equal(before.day, "2030-12-31");
  assert.equal(after.day, "2031-01-01");
});

// The seed's examples read the clock for HHHHHHHH separately from `time` (their hex is sometimes one
// second later), so no one rule reproduces them all. talkgate uses whole seconds, rounded down, from the
// same receive time as the day of the counter: rounding up could give the last event of one day and the
// first of the next the same counter and the same seconds.
test("formatSerialNumber writes the receive time in whole Unix seconds, rounded down", () => {
  assert.equal(formatSerialNumber("Uae87c693e28", 1, 1633072251715), "Uae87c693e28-0001-6156B47B");
  assert.equal(formatSerialNumber("Uae87c693e28", 2, 1633072447412), "Uae87c693e28-0002-6156B53F");
  assert.equal(formatSerialNumber("Uae87c693e28", 1, 86_399_999), "Uae87c693e28-0001-0001517F");
});

const FORMAT_CASES: Array<{
  name: string;
  prefix: string;
  counter: number;
  receivedAt: number;
  expected: string;
}> = [
  // The seed's image example: time 1633072447412, serial …-0002-6156B53F.
  {
    name: "seed image example",
    prefix: "Uae87c693e28",
    counter: 2,
    receivedAt: 1633072447412,
    expected: "Uae87c693e28-0002-6156B53F",
  },
  { name: "an exact second", prefix: "P", counter: 1, receivedAt: 1_000, expected: "P-0001-00000001" },
  { name: "counter 9999", prefix: "P", counter: 9999, receivedAt: 0, expected: "P-9999-00000000" },
  { name: "counter 10000 widens", prefix: "P", counter: 10000, receivedAt: 0, expected: "P-10000-00000000" },
  {
    name: "counter 123456 widens",
    prefix: "P",
    counter: 123456,
    receivedAt: 0,
    expected: "P-123456-00000000",
  },
  {
    name: "hex is upper-case",
    prefix: "P",
    counter: 42,
    receivedAt: 0xabcdef12 * 1000,
    expected: "P-0042-ABCDEF12",
  },
  {
    name: "small time is zero-padded to 8 hex digits",
    prefix: "P",
    counter: 1,
    receivedAt: 255_000,
    expected: "P-0001-000000FF",
  },
];

for (const c of FORMAT_CASES) {
  test(`formatSerialNumber: ${c.name}`, () => {
    assert.equal(formatSerialNumber(c.prefix, c.counter, c.receivedAt), c.expected);
  });
}

test("formatSerialNumber: a 12-character prefix with an 8-digit counter fits in 30 characters", () => {
  const serial = formatSerialNumber("Uae87c693e28", 99_999_999, Date.UTC(2099, 11, 31, 23, 59, 59));
  assert.equal(
    serial,
    `Uae87c693e28-99999999-${Math.floor(Date.UTC(2099, 11, 31, 23, 59, 59) / 1000)
      .toString(16)
      .toUpperCase()}`,
  );
  assert.ok(serial.length <= 30, `${serial} is ${serial.length} characters`);
  assert.match(serial, /^[A-Za-z0-9]{12}-\d{4,}-[0-9A-F]{8}$/);
});

test("serialReceivedAt: the receive time a serial number carries, to the second; null for other strings", () => {
  const at = Date.UTC(2026, 11, 3, 9, 30, 15);
  assert.equal(serialReceivedAt(formatSerialNumber("Uae87c693e28", 7, at + 999)), at);
  assert.equal(serialReceivedAt(formatSerialNumber("16561683_3", 12345, at)), at);
  for (const other of ["", "abc", "U1-0001-xyz", "U1-01-65A1B2C3", "U 1-0001-65A1B2C3"])
    assert.equal(serialReceivedAt(other), null, other);
});
