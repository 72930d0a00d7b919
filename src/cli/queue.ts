import type { Command } from "commander";
import type { AdminQueueEntry } from "../live/gateway/admin.ts";
import { AdminUnreachable, DEFAULT_ADMIN_URL, fetchAdmin, renderQueue } from "../live/views.ts";

/** `splitscale queue`: requests waiting at a running gateway and why (EverAI's `app queue`). */
export function registerQueueCommand(program: Command): void {
  program
    .command("queue")
    .description(
      "List requests waiting in the gateway queue with their reason: WorkerBusy (all workers at capacity) or NoWorker (none ready).",
    )
    .option("--url <url>", "the gateway (or SPLITSCALE_URL)", DEFAULT_ADMIN_URL)
    .option("--json", "print the admin API's JSON")
    .addHelpText(
      "after",
      `
Examples:
  splitscale queue
  watch -n1 splitscale queue --url http://127.0.0.1:9000

Exit codes: 0 ok, 2 bad flags, 3 the gateway cannot be reached.`,
    )
    .action(async (options: { url: string; json?: boolean }) => {
      try {
        const body = await fetchAdmin<{ length: number; max_size: number; entries: AdminQueueEntry[] }>(
          options.url,
          "/admin/queue",
        );
        if (options.json === true) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
        else process.stdout.write(`${renderQueue(body.entries)}\n`);
      } catch (error) {
        if (!(error instanceof AdminUnreachable)) throw error;
        process.stderr.write(`splitscale: ${error.message}\n`);
        process.exitCode = 3;
      }
    });
}
