// The docs stay true to the code: every error code, configuration default and CLI option is documented (metric
// names: test/metrics.test.ts).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { OPTIONS, USAGE } from "../bin/cli.ts";
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

test("every CLI option is in --help and in docs/operations.md, and the docs name no option the CLI lacks", () => {
  const page = readFileSync("docs/operations.md", "utf8");
  const options = Object.keys(OPTIONS).map((name) => `--${name}`);
  for (const option of options) {
    assert.ok(USAGE.includes(option), `${option} in talkgate --help`);
    if (option !== "--help" && option !== "--port")
      assert.ok(page.includes(`\`${option}`), `${option} in operations.md`);
  }
  const mentioned = new Set([...page.matchAll(/`(--[a-z-]+)/g)].map((m) => m[1]));
  for (const option of mentioned)
    assert.ok(options.includes(option ?? ""), `${option} is an option of the CLI`);
});
