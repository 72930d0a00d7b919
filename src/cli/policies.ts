import type { Command } from "commander";
import "../policy/builtin.ts";
import { listPolicies } from "../policy/registry.ts";
import { formatTable, terminalWidth } from "../report/table.ts";

export function registerPoliciesCommand(program: Command): void {
  program
    .command("policies")
    .description("List the autoscaling policies (use one with `autoscaling.policy` or `compare --policies`).")
    .option("--json", "print as JSON")
    .action((options: { json?: boolean }) => {
      const policies = listPolicies();
      if (options.json === true) {
        const rows = policies.map(({ name, description, aliases }) => ({
          name,
          aliases: aliases ?? [],
          description,
        }));
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      const rows = policies.map((policy) => [
        [policy.name, ...(policy.aliases ?? [])].join(", "),
        policy.description,
      ]);
      process.stdout.write(
        `${formatTable(["policy", "description"], rows, { maxWidth: terminalWidth() })}\n`,
      );
    });
}
