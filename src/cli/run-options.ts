import { Option, type Command } from "commander";
import { UsageError } from "../errors.ts";

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * The flags that choose what commands running several simulations (compare, sweep) start from:
 * a config or preset, a trace, overrides for every run, and the seed.
 */
export function addBaseConfigOptions(command: Command, defaultPreset: string): Command {
  return command
    .option("-c, --config <file>", "YAML config file")
    .option("-p, --preset <name>", `built-in config (default: ${defaultPreset})`)
    .option("-t, --trace <file>", "replay this trace instead of the configured workload")
    .addOption(
      new Option("--trace-format <format>", "format of --trace")
        .choices(["auto", "azure", "splitwise", "mooncake"])
        .default("auto"),
    )
    .option("-s, --set <key=value>", "override a config key in every run (repeatable)", collect, [])
    .option("--seed <n>", "random seed (overrides the config's seed)")
    .option("--threads <n>", "worker threads (default: all cores)");
}

/** `--threads`: undefined (all cores) or a positive integer. */
export function parseThreads(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const threads = Number(text);
  if (!Number.isInteger(threads) || threads < 1)
    throw new UsageError(`--threads expects a positive integer, got "${text}"`);
  return threads;
}

/** A command starts from one config: refuses --config together with --preset (one would be ignored). */
export function checkOneBaseConfig(options: { readonly config?: string; readonly preset?: string }): void {
  if (options.config !== undefined && options.preset !== undefined)
    throw new UsageError("use only one of --config and --preset");
}
