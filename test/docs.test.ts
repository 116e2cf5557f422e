// The docs stay true to the code: every error code and every configuration default is documented.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { DEFAULTS } from "../src/config/config.ts";
import { ERROR_CODES } from "../src/core/errors.ts";

test("docs/errors.md lists every error code with its HTTP status", () => {
  const page = readFileSync("docs/errors.md", "utf8");
  for (const [code, { status }] of Object.entries(ERROR_CODES)) {
    assert.match(
      page,
      new RegExp(`\\| \`${code}\` +\\| ${status} +\\|`),
      `${code} (${status}) is documented`,
    );
  }
});

test("docs/configuration.md names every tunable setting with its default", () => {
  const page = readFileSync("docs/configuration.md", "utf8");
  for (const [section, values] of Object.entries(DEFAULTS)) {
    if (typeof values !== "object") continue;
    for (const [key, value] of Object.entries(values)) {
      assert.match(
        page,
        new RegExp(`\`${section}\\.${key}\`[^\\n]*\`${String(value).replaceAll(".", "\\.")}\``),
        `${section}.${key}`,
      );
    }
  }
});
