// Database URLs as messages show them: never a password.
import assert from "node:assert/strict";
import { test } from "node:test";
import { redactedUrl } from "./connection.ts";

test("redactedUrl drops the password, says so, and keeps the rest", () => {
  const cases: Array<[string, string]> = [
    ["postgres://talkgate:s3cret@db:5432/x", "postgres://talkgate@db:5432/x (password redacted)"],
    [
      "postgresql://u:p%40ss@10.0.0.1/x?sslmode=require",
      "postgresql://u@10.0.0.1/x?sslmode=require (password redacted)",
    ],
    [
      "postgres://u@db/x?password=s3cret&sslmode=require",
      "postgres://u@db/x?sslmode=require (password redacted)",
    ],
    ["postgres://u@db/x", "postgres://u@db/x"],
  ];
  for (const [url, shown] of cases) {
    assert.equal(redactedUrl(url), shown, url);
    assert.doesNotMatch(redactedUrl(url), /s3cret|p%40ss/);
  }
});
