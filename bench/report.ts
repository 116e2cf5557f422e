// bench/RESULTS.md: the run's header, every goal with its figure, then each scenario's section.

export interface Section {
  title: string;
  lines: string[];
}

export interface Goal {
  scenario: string;
  aim: string;
  measured: string;
  /** null: a figure reported without an aim. */
  holds: boolean | null;
}

export function render(
  header: readonly string[],
  goals: readonly Goal[],
  sections: readonly Section[],
): string {
  const out = [...header, "", "## Goals", "", "| scenario | aim | measured | |", "|---|---|---|---|"];
  for (const goal of goals)
    out.push(
      `| ${goal.scenario} | ${goal.aim} | ${goal.measured} | ${goal.holds === null ? "reported" : goal.holds ? "holds" : "**missed**"} |`,
    );
  for (const section of sections) out.push("", `## ${section.title}`, "", ...section.lines);
  return `${out.join("\n")}\n`;
}
