// Unit tests for sharing free delivery slots among partners.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fairShares } from "./fair-share.ts";

const candidate = (partnerId: string, held: number, slots: number, due: number) => ({
  partnerId,
  held,
  slots,
  due,
});

test("free slots go one at a time to the partner holding the fewest, within each one's cap and due work", () => {
  const cases: Array<[string, Parameters<typeof fairShares>[0], number, Record<string, number>]> = [
    ["one partner takes what is due", [candidate("a", 0, 32, 5)], 10, { a: 5 }],
    ["…up to the total", [candidate("a", 0, 32, 50)], 10, { a: 10 }],
    ["…up to its cap, counting what it holds", [candidate("a", 30, 32, 50)], 10, { a: 2 }],
    [
      "a busy partner leaves room for an idle one",
      [candidate("slow", 20, 32, 300), candidate("b", 0, 32, 10)],
      10,
      { b: 10 },
    ],
    [
      "equal partners share equally",
      [candidate("a", 0, 32, 50), candidate("b", 0, 32, 50)],
      10,
      { a: 5, b: 5 },
    ],
    [
      "ties go to the first listed",
      [candidate("a", 0, 32, 50), candidate("b", 0, 32, 50)],
      3,
      { a: 2, b: 1 },
    ],
    [
      "a paused partner (no slot) gets nothing",
      [candidate("paused", 0, 0, 50), candidate("b", 0, 32, 2)],
      10,
      { b: 2 },
    ],
    ["a probing partner gets one", [candidate("probe", 0, 1, 50)], 10, { probe: 1 }],
    ["nothing due, nothing given", [candidate("a", 0, 32, 0)], 10, {}],
  ];
  for (const [name, candidates, total, expected] of cases) {
    assert.deepEqual(Object.fromEntries(fairShares(candidates, total)), expected, name);
  }
});
