// The PostgreSQL section of bench/RESULTS.md: the server the scenarios ran on, and what each PostgreSQL run cost
// the database per event (statements and round trips, transactions, rows, WAL, CPU), so scaling can be reasoned
// about.
import type { DatabaseCost } from "./databases.ts";
import type { Section } from "./report.ts";
import { fmt } from "./support.ts";

export interface CostRow {
  /** e.g. "intake, 1 instance". */
  scenario: string;
  /** Events the run handled (stored, or delivered from a backlog); the figures are per one of them. */
  events: number;
  /** What the events went through, e.g. "stored and delivered". */
  what: string;
  cost: DatabaseCost;
}

const SHOWN = 16;
const per = (n: number, events: number, digits = 2) => fmt(n / Math.max(1, events), digits);

/** The section; `breakdown` names the row whose statements are listed one by one. */
export function costSection(server: string, rows: readonly CostRow[], breakdown?: string): Section {
  const lines = [
    server,
    "",
    "**Database cost per event.** Counted from before talkgate starts to after it stopped and its connections " +
      "closed (PostgreSQL reports a backend's counters when it ends), so start-up and the final drain are in; " +
      "the bench's own few queries are left out.",
    "",
    "| run | events | statements (round trips) / event | transactions / event | rows written / event (ins + upd + del) | WAL bytes / event | WAL flushes / 1,000 events | PostgreSQL CPU µs / event |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const { scenario, events, what, cost } of rows) {
    const written = cost.inserted + cost.updated + cost.deleted;
    lines.push(
      `| ${scenario} | ${fmt(events)} ${what} | ` +
        `${cost.statements === null ? "n/a" : per(cost.statements, events)} | ${per(cost.commits, events)} | ` +
        `${per(written, events)} (${per(cost.inserted, events)} + ${per(cost.updated, events)} + ` +
        `${per(cost.deleted, events)}) | ${per(cost.walBytes, events, 0)} | ${per(1000 * cost.walSyncs, events, 1)} | ` +
        `${cost.cpuSeconds === null ? "n/a" : per(cost.cpuSeconds * 1e6, events, 0)} |`,
    );
  }
  lines.push(
    "",
    "- **statements (round trips)**: calls of talkgate's statements in `pg_stat_statements`, BEGIN and COMMIT " +
      "included (COMMIT counted one per BEGIN, as pg_stat_statements may not count every COMMIT). Each is one " +
      "client–server round trip: node-postgres sends one statement at a time per connection and waits for its " +
      "answer, and the store awaits each statement of a transaction before the next, so this is also the round " +
      "trips per event.",
    "- **transactions**: `xact_commit` of the run's database (`pg_stat_database`). Intake stores every webhook " +
      "waiting in one transaction per instance (group commit), and a delivery attempt settles a whole claimed " +
      "batch of a conversation at once, so both fall as the load rises.",
    "- **rows written**: `tup_inserted`, `tup_updated`, `tup_deleted` (heap rows; index entries not counted).",
    "- **WAL bytes** (`pg_stat_wal.wal_bytes`, the whole server: checkpoints' full-page images and autovacuum " +
      "included) is what a replica or a backup stream carries and what the disk writes per event; **WAL " +
      "flushes** (`wal_sync`) are the fsyncs commits wait for: PostgreSQL lets concurrent commits share one.",
    "- **PostgreSQL CPU**: the server's processes (postmaster, every backend, background writers), CPU time per " +
      "event; with talkgate's own CPU per event it tells how many cores a given rate needs.",
  );
  const detail = rows.find((row) => row.scenario === breakdown) ?? rows[0];
  if (detail && detail.cost.byStatement.length > 0)
    lines.push(
      "",
      `Statements of the ${detail.scenario} run per 1,000 events (${fmt(detail.events)} ${detail.what}), most ` +
        "called first, with the time PostgreSQL spent executing them (`total_exec_time`: lock waits included):",
      "",
      ...statementTable(detail, SHOWN),
    );
  return { title: "PostgreSQL", lines };
}

/** A run's statements per 1,000 events as a table: the `shown` most called, then the rest summed. */
export function statementTable(row: CostRow, shown = Number.POSITIVE_INFINITY): string[] {
  const { events, cost } = row;
  const ms = (n: number) => (Number.isNaN(n) ? "n/a" : per(1000 * n, events, 1));
  const rest = cost.byStatement.slice(shown);
  return [
    "| calls / 1,000 events | ms / 1,000 events | statement |",
    "|---:|---:|---|",
    ...cost.byStatement
      .slice(0, shown)
      .map((s) => `| ${per(1000 * s.calls, events, 1)} | ${ms(s.ms)} | \`${shorten(s.query)}\` |`),
    ...(rest.length > 0
      ? [
          `| ${per(1000 * rest.reduce((n, s) => n + s.calls, 0), events, 1)} | ` +
            `${ms(rest.reduce((n, s) => n + (Number.isNaN(s.ms) ? 0 : s.ms), 0))} | (${rest.length} others) |`,
        ]
      : []),
  ];
}

// One line, at most 110 characters, safe inside a table cell and a code span.
function shorten(query: string): string {
  const line = query.replace(/\s+/g, " ").replaceAll("|", "¦").replaceAll("`", "'").trim();
  return line.length > 110 ? `${line.slice(0, 107)}…` : line;
}
