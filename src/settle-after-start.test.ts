import assert from "node:assert/strict";
import { test } from "node:test";
import { runInNewContext } from "node:vm";
import { settleAfterStart } from "./settle-after-start.ts";

test("settleAfterStart collects garbage without leaving gc exposed", () => {
  settleAfterStart();
  settleAfterStart();
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, "undefined");
  assert.equal(runInNewContext("typeof gc"), "undefined", "contexts made afterwards have no gc");
});
