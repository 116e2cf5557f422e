// Statements as tagged templates: parameters numbered across nested fragments, JSON as one jsonb parameter,
// nothing of a value in the SQL text.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createPool } from "./sql.ts";

// A pool that never connects: compiling a statement needs no server.
const sql = createPool("postgres://nobody@127.0.0.1:1/none", {
  max: 1,
  connectTimeoutMs: 1_000,
  statementTimeoutMs: 1_000,
  onError: () => {},
});

test("values become numbered parameters, through fragments nested at any depth", () => {
  const state = "pending'; DROP TABLE events; --";
  let where = sql`e.sender_key = ${"1656168303"}`;
  where = sql`${where} AND e.state = ${state}`;
  const statement = sql`SELECT * FROM events e WHERE ${where} AND e.id > ${42} LIMIT ${10}`;
  assert.deepEqual(statement.compile(), {
    text: "SELECT * FROM events e WHERE e.sender_key = $1 AND e.state = $2 AND e.id > $3 LIMIT $4",
    values: ["1656168303", state, 42, 10],
  });
});

test("rows passed as JSON are one jsonb parameter", () => {
  const rows = [
    { s: "a", c: "user:U1" },
    { s: "b", c: "group:C2" },
  ];
  const statement = sql`SELECT * FROM jsonb_to_recordset(${sql.json(rows)}) AS t(s text, c text) WHERE t.s <> ${"x"}`;
  assert.deepEqual(statement.compile(), {
    text: "SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(s text, c text) WHERE t.s <> $2",
    values: [JSON.stringify(rows), "x"],
  });
});
