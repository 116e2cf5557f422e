// Unit tests for request validation: strict query coercion, and schema errors worded by field.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { FastifySchemaValidationError } from "fastify";
import { coerceQuery, formatSchemaErrors, unstorableText } from "./validation.ts";

test("query strings become integers and booleans only when they are written as such", () => {
  const schema = { properties: { n: { type: "integer" }, b: { type: "boolean" }, s: { type: "string" } } };
  const cases: Array<[Record<string, unknown>, Record<string, unknown>]> = [
    [
      { n: "42", b: "true", s: "7" },
      { n: 42, b: true, s: "7" },
    ],
    [
      { n: "-3", b: "false" },
      { n: -3, b: false },
    ],
    [{ n: "Infinity" }, { n: "Infinity" }],
    [{ n: "1e3" }, { n: "1e3" }],
    [{ n: "0x10" }, { n: "0x10" }],
    [{ n: " 5" }, { n: " 5" }],
    [{ n: "05" }, { n: "05" }],
    [{ n: "99999999999999999" }, { n: "99999999999999999" }],
    [{ b: "1" }, { b: "1" }],
    [{ other: "1" }, { other: "1" }],
  ];
  for (const [query, expected] of cases) {
    coerceQuery(schema, query);
    assert.deepEqual(query, expected);
  }
});

const error = (e: Partial<FastifySchemaValidationError> & { parentSchema?: unknown }) =>
  ({ instancePath: "", schemaPath: "#/x", params: {}, message: "", ...e }) as FastifySchemaValidationError;

test("schema errors name the field, say what is wrong in plain words, and are listed once", () => {
  const message = formatSchemaErrors(
    [
      error({ keyword: "additionalProperties", params: { additionalProperty: "notification_disable" } }),
      error({ keyword: "required", params: { missingProperty: "sender_key" } }),
      error({ keyword: "type", instancePath: "/messages/0/text", params: { type: "string" } }),
      error({ keyword: "maxLength", instancePath: "/serial_number", params: { limit: 30 } }),
      error({ keyword: "const", instancePath: "/state", schemaPath: "#/properties/state/anyOf/0/const" }),
      error({
        keyword: "anyOf",
        instancePath: "/state",
        parentSchema: { anyOf: [{ const: "pending" }, { const: "dead" }] },
      }),
      error({
        keyword: "anyOf",
        instancePath: "/state",
        parentSchema: { anyOf: [{ const: "pending" }, { const: "dead" }] },
      }),
    ],
    "body",
  ).message;
  assert.equal(
    message,
    "notification_disable: unknown field; sender_key: missing; messages[0].text: must be a string; " +
      'serial_number: must have at most 30 characters; state: must be one of "pending", "dead"',
  );
  assert.equal(
    formatSchemaErrors([error({ keyword: "type", params: { type: "object" } })], "body").message,
    "body: must be a JSON object",
  );
  assert.equal(
    formatSchemaErrors(
      [
        error({
          keyword: "pattern",
          instancePath: "/cursor",
          parentSchema: { description: "the next_cursor of the previous page" },
        }),
      ],
      "querystring",
    ).message,
    "cursor: must be the next_cursor of the previous page",
  );
});

test("unstorableText names the first string with a NUL or an unpaired surrogate, nested at any depth", () => {
  assert.equal(unstorableText({ serial_number: "a\u0000b" }, "query"), "query.serial_number");
  assert.equal(
    unstorableText(
      {
        messages: [
          { type: "text", text: "ok" },
          { type: "text", text: "\ud800" },
        ],
      },
      "body",
    ),
    "body.messages[1].text",
  );
  assert.equal(unstorableText({ text: "한글 😀 \t\n" }, "body"), null);
  assert.equal(unstorableText(undefined, "body"), null);
});
