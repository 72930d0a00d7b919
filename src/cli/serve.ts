import type { Command } from "commander";
import { stringify } from "yaml";
import { loadServeConfig, parseServeConfigText } from "../config/serve-schema.ts";
import { UsageError } from "../errors.ts";
import { startServe } from "../live/serve.ts";

interface ServeOptions {
  config?: string;
  host?: string;
  port?: string;
  printConfig?: boolean;
  check?: boolean;
}

/** `splitscale serve --config FILE`: the gateway, its queue and the autoscaling control loop. */
export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description(
      "Run an OpenAI-compatible gateway with a bounded queue in front of a fleet of workers, scaled by the same\n" +
        "policies as `simulate` (process actuator: workers on this machine; kubernetes: Deployments/StatefulSets).",
    )
    .option(
      "-c, --config <file>",
      "serve config (YAML, see docs/live.md); without it: one emulated engine, no autoscaling",
    )
    .option("--host <address>", "listen address (overrides listen.host)")
    .option("--port <n>", "listen port (overrides listen.port; 0 = any free port)")
    .option("--print-config", "print the resolved config and exit")
    .option("--check", "validate the config and the policy, then exit")
    .addHelpText(
      "after",
      `
Examples:
  splitscale serve --config serve.yaml
  splitscale serve --config serve.yaml --port 9000
  splitscale serve --config k8s.yaml --check
  splitscale workers list; splitscale queue; splitscale status     # views of a running gateway

A minimal config (EverAI's SimpleAutoScaler over emulated engines):
  pools: { mixed: { min: 1, max: 3, startup_delay_s: 5 } }
  routing: { max_concurrency_per_worker: 4 }
  autoscaling: { policy: everai, policy_config: { min_workers: 1, max_workers: 3, max_queue_size: 2, max_idle_time: 60 } }

Endpoints: /v1/completions, /v1/chat/completions, /v1/models, /health, /metrics,
/admin/status, /admin/workers, /admin/queue, /admin/decisions.
Exit codes: 0 after SIGTERM/SIGINT, 2 bad flags or config (file:line: key: problem), 3 cannot run.`,
    )
    .action(async (options: ServeOptions) => {
      await serveCommand(options);
    });
}

async function serveCommand(options: ServeOptions): Promise<void> {
  const loaded =
    options.config === undefined
      ? parseServeConfigText("{}", "(defaults)", process.cwd())
      : loadServeConfig(options.config);
  if (options.printConfig === true) {
    process.stdout.write(stringify(loaded.config));
    return;
  }
  let port: number | undefined;
  if (options.port !== undefined) {
    port = Number(options.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError(`--port expects 0..65535, got "${options.port}"`);
  }
  if (options.check === true) {
    const { checkServeConfig } = await import("../live/check.ts");
    process.stdout.write(`${checkServeConfig(loaded)}\n`);
    return;
  }
  const handle = await startServe(loaded, {
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(port === undefined ? {} : { port }),
  });
  process.stdout.write(`serving on ${handle.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.stderr.write(`${signal}: stopping the gateway and its workers\n`);
      handle.close().then(resolve, (error: unknown) => {
        process.stderr.write(`shutdown: ${error instanceof Error ? error.message : String(error)}\n`);
        resolve();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
