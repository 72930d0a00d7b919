import type { Command } from "commander";
import {
  AdminUnreachable,
  DEFAULT_ADMIN_URL,
  fetchAdmin,
  formatSimpleTable,
  formatTimestamp,
  renderStatus,
  type AdminStatus,
} from "../live/views.ts";
import type { DecisionRecord } from "../live/controller.ts";

/** `splitscale status`: a running gateway's pools, queue, request counters and recent scaling decisions. */
export function registerStatusCommand(program: Command): void {
  program
    .command("status")
    .description(
      "Summarize a running `splitscale serve`: pools (desired, starting, ready, busy, draining), queue, requests, latency.",
    )
    .option("--url <url>", "the gateway (or SPLITSCALE_URL)", DEFAULT_ADMIN_URL)
    .option("--decisions <n>", "also list the last N scaling decisions", "0")
    .option("--json", "print the admin API's JSON")
    .addHelpText(
      "after",
      `
Examples:
  splitscale status
  splitscale status --decisions 10 --url http://127.0.0.1:9000

Exit codes: 0 ok, 2 bad flags, 3 the gateway cannot be reached.`,
    )
    .action(async (options: { url: string; decisions: string; json?: boolean }) => {
      const count = Number(options.decisions);
      if (!Number.isInteger(count) || count < 0) {
        process.stderr.write(
          `splitscale: --decisions expects a non-negative integer, got "${options.decisions}"\n`,
        );
        process.exitCode = 2;
        return;
      }
      try {
        const status = await fetchAdmin<AdminStatus>(options.url, "/admin/status");
        const decisions =
          count > 0
            ? (
                await fetchAdmin<{ decisions: DecisionRecord[] }>(
                  options.url,
                  `/admin/decisions?limit=${count}`,
                )
              ).decisions
            : [];
        if (options.json === true) {
          process.stdout.write(`${JSON.stringify(count > 0 ? { ...status, decisions } : status, null, 2)}\n`);
          return;
        }
        process.stdout.write(`${renderStatus(status)}\n`);
        if (count > 0) {
          const rows = decisions.map((d) => [
            formatTimestamp(d.at),
            d.pool,
            d.from,
            d.to,
            d.reasons.join("; ").slice(0, 120),
          ]);
          process.stdout.write(`\n${formatSimpleTable(["AT", "POOL", "FROM", "TO", "REASON"], rows)}\n`);
        }
      } catch (error) {
        if (!(error instanceof AdminUnreachable)) throw error;
        process.stderr.write(`splitscale: ${error.message}\n`);
        process.exitCode = 3;
      }
    });
}
