import type { Command } from "commander";
import type { AdminWorker } from "../live/gateway/admin.ts";
import { AdminUnreachable, DEFAULT_ADMIN_URL, fetchAdmin, renderWorkers } from "../live/views.ts";

/** `splitscale workers list`: the fleet behind a running gateway (EverAI's `worker list`). */
export function registerWorkersCommand(program: Command): void {
  const workers = program
    .command("workers")
    .description("Inspect the workers behind a running `splitscale serve`.");
  workers
    .command("list")
    .description(
      "List workers: ID, STATUS (RUNNING, PENDING, RESTARTING, STOPPING, DELETED), DETAIL_STATUS (FREE, BUSY, DRAINING, ...).",
    )
    .option("--url <url>", "the gateway (or SPLITSCALE_URL)", DEFAULT_ADMIN_URL)
    .option("--all", "include recently deleted workers")
    .option("--wide", "more columns: pool, in-flight, served, restarts, KV-cache and GPU use, URL, notes")
    .option("--json", "print the admin API's JSON")
    .addHelpText(
      "after",
      `
Examples:
  splitscale workers list
  splitscale workers list --all --wide --url http://10.0.0.5:8080

Exit codes: 0 ok, 2 bad flags, 3 the gateway cannot be reached.`,
    )
    .action(async (options: { url: string; all?: boolean; wide?: boolean; json?: boolean }) => {
      try {
        const body = await fetchAdmin<{ workers: AdminWorker[] }>(options.url, "/admin/workers");
        if (options.json === true) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
        else
          process.stdout.write(
            `${renderWorkers(body.workers, { all: options.all === true, wide: options.wide === true })}\n`,
          );
      } catch (error) {
        if (!(error instanceof AdminUnreachable)) throw error;
        process.stderr.write(`splitscale: ${error.message}\n`);
        process.exitCode = 3;
      }
    });
}
