import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { applyOverrides, readConfigSource, validateConfig, type LoadedConfig } from "../config/config.ts";
import { withAbsolutePaths } from "../config/resolved-config.ts";
import { DEFAULT_PRESET, presetPath } from "../config/presets.ts";
import { readSplitwiseConfig } from "../config/splitwise-compat.ts";
import { UsageError } from "../errors.ts";
import { summaryToJson } from "../metrics/summary.ts";
import { formatSummaryTable } from "../report/table.ts";
import { renderSvg, svgToPng, timelineChartSpec } from "../report/charts.ts";
import type { TimelineRow } from "../metrics/timeline.ts";
import { runSimulation, type RunResult } from "../simulate/run.ts";
import { configNotes } from "../simulate/setup.ts";
import { runNotes } from "../simulate/run-notes.ts";
import { UpstreamOutputs } from "../simulate/upstream-outputs.ts";
import { stringify } from "yaml";
import { ProgressReporter } from "./progress.ts";

export interface SimulateOptions {
  config?: string;
  preset?: string;
  splitwiseConfig?: string;
  trace?: string;
  traceFormat?: string;
  set: string[];
  /** `key=value` overrides of one sweep point (applied after --set; errors name them as --vary). */
  varied?: readonly string[];
  policyFile?: string;
  seed?: string;
  out?: string;
  json?: boolean;
  requests?: boolean;
  progress: boolean;
  /** false with --no-charts. */
  charts?: boolean;
  printConfig?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerSimulateCommand(program: Command): void {
  program
    .command("simulate")
    .description(
      "Run one simulation and report latency, SLO attainment, GPU-hours, cost and energy.\n" +
        `Without --config/--preset it runs the "${DEFAULT_PRESET}" preset (the bundled Azure 2023 conversation trace).`,
    )
    .option("-c, --config <file>", "YAML config file (see docs/config.md)")
    .option("-p, --preset <name>", "built-in config (list them with `splitscale presets`)")
    .option(
      "--splitwise-config <file>",
      "a resolved upstream splitwise-sim config.yaml, run in upstream-compatible mode",
    )
    .option(
      "-t, --trace <file>",
      "replay this trace instead of the configured workload (Azure, splitwise or Mooncake format)",
    )
    .addOption(
      new Option("--trace-format <format>", "format of --trace")
        .choices(["auto", "azure", "splitwise", "mooncake"])
        .default("auto"),
    )
    .option(
      "-s, --set <key=value>",
      "override a config key, e.g. --set scheduler.name=token_jsq (repeatable)",
      collect,
      [],
    )
    .option("--seed <n>", "random seed (overrides the config's seed)")
    .option(
      "--policy-file <file>",
      "autoscale with this policy file (splitscale policy YAML, or MatrixInfer/Kthena AutoscalingPolicy[Binding] YAML)",
    )
    .option("-o, --out <dir>", "output directory (default: out/<config name>)")
    .option("--requests", "also write requests.csv, one row per completed request")
    .option("--json", "print summary.json to stdout instead of the tables")
    .option("--no-progress", "do not draw the progress bar")
    .option("--no-charts", "do not draw timeline.svg/timeline.png (timeline.csv is still written)")
    .option("--print-config", "print the resolved config and exit")
    .addHelpText(
      "after",
      `
Examples:
  splitscale simulate                                   # Azure conversation trace, autoscaled (the default preset)
  splitscale simulate --preset azure-conv-baseline-h100 --set cluster.servers.0.count=6
  splitscale simulate --config my.yaml --trace mooncake.jsonl --out out/mooncake
  splitscale simulate --splitwise-config run/config.yaml --trace traces/rr_conv_80.csv

Outputs in --out: summary.json, summary.csv (one row), timeline.csv (one row per
metrics.timeline_interval_s, default 60 s: load, latency percentiles, SLO attainment, GPUs) with
its chart timeline.svg/.png, instances.csv, config.resolved.yaml, requests.csv (with --requests);
autoscaled runs add replicas.csv, decisions.csv and scaling_events.csv; --splitwise-config mode
adds upstream/summary.csv, upstream/detailed/0.csv, upstream/detailed/0_alloc.csv and
upstream/request_nodes.csv in splitwise-sim's own format.
Exit codes: 0 success, 2 bad flags/config/input, 3 a configuration that cannot run or a failed run.`,
    )
    .action(async (options: SimulateOptions) => {
      await simulateCommand(options);
    });
}

function parseSeed(text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
    throw new UsageError(`--seed expects a non-negative integer, got "${text}"`);
  return Number(text);
}

/** Resolves flags into one validated config: file or preset, then --set, --seed and --trace. */
export function resolveSimulateConfig(options: SimulateOptions): {
  loaded: LoadedConfig;
  name: string;
  upstream: boolean;
} {
  const sources = [options.config, options.preset, options.splitwiseConfig].filter(
    (value) => value !== undefined,
  );
  if (sources.length > 1) throw new UsageError("use only one of --config, --preset and --splitwise-config");
  const traceFormat = options.traceFormat ?? "auto";
  if (options.splitwiseConfig !== undefined && traceFormat !== "auto" && traceFormat !== "splitwise")
    throw new UsageError(
      `--trace-format ${traceFormat}: --splitwise-config replays a splitwise CSV trace, as upstream does`,
    );
  let raw: Record<string, unknown>;
  let locate: ((path: PropertyKey[]) => string) | undefined;
  let source: string;
  let baseDir: string;
  let name: string;
  const upstream = options.splitwiseConfig !== undefined;
  if (options.splitwiseConfig !== undefined) {
    if (options.trace === undefined)
      throw new UsageError("--splitwise-config needs --trace FILE (the upstream trace the run replays)");
    raw = readSplitwiseConfig(options.splitwiseConfig);
    source = options.splitwiseConfig;
    baseDir = process.cwd();
    name = "splitwise-compat";
  } else if (options.config !== undefined) {
    ({ raw, locate } = readConfigSource(options.config));
    source = options.config;
    baseDir = resolve(options.config, "..");
    name = typeof raw.name === "string" ? raw.name : baseName(options.config);
  } else {
    const preset = options.preset ?? DEFAULT_PRESET;
    source = presetPath(preset);
    ({ raw, locate } = readConfigSource(source));
    baseDir = resolve(source, "..");
    name = preset;
  }
  if (options.trace !== undefined) {
    // A trace given on the command line is relative to the working directory, not the config. It
    // replaces the configured workload before --set applies, so `--set workload.limit=...` (or
    // start_s, time_scale, ...) shapes this trace.
    raw.workload = {
      type: "trace",
      path: resolve(options.trace),
      format: upstream ? "splitwise" : (options.traceFormat ?? "auto"),
    };
  }
  const varied = options.varied ?? [];
  applyOverrides(raw, [...options.set, ...varied]);
  if (options.seed !== undefined) raw.seed = parseSeed(options.seed);
  if (options.policyFile !== undefined) {
    const autoscaling = raw.autoscaling;
    const block =
      autoscaling !== null && typeof autoscaling === "object" ? (autoscaling as Record<string, unknown>) : {};
    raw.autoscaling = { ...block, policy_file: resolve(options.policyFile) };
  }
  const config = validateConfig(raw, source, locate, [
    ...options.set.map((text) => ({ flag: "--set", text })),
    ...varied.map((text) => ({ flag: "--vary", text })),
  ]);
  return { loaded: { config, baseDir, source }, name, upstream };
}

function baseName(path: string): string {
  const file = path.split(/[\\/]/).pop() ?? path;
  return file.replace(/\.(ya?ml|json)$/i, "");
}

async function simulateCommand(options: SimulateOptions): Promise<void> {
  const { loaded, name, upstream } = resolveSimulateConfig(options);
  if (options.printConfig === true) {
    // Absolute paths, so the printed config runs from wherever it is saved.
    process.stdout.write(stringify(withAbsolutePaths(loaded.config, loaded.baseDir, loaded.source)));
    return;
  }
  const outDir = options.out ?? join("out", name.replace(/[^A-Za-z0-9._-]+/g, "_"));
  const createdOutDir = !existsSync(outDir);
  mkdirSync(outDir, { recursive: true });
  for (const note of configNotes(loaded.config)) process.stderr.write(`note: ${note}\n`);

  const progress = new ProgressReporter("simulate", options.progress && options.json !== true);
  const upstreamOutputs = upstream ? new UpstreamOutputs() : undefined;
  let result: RunResult;
  try {
    result = runSimulation(loaded, {
      outDir,
      writeRequests: options.requests === true,
      onNote: (note) => process.stderr.write(`note: ${note}\n`),
      ...(upstreamOutputs === undefined
        ? {}
        : { onRecord: upstreamOutputs.onRecord, onRequestCompleted: upstreamOutputs.onRequestCompleted }),
      onProgress: (state) => {
        const fraction = state.arrived === 0 ? 0 : state.completed / Math.max(state.arrived, 1);
        progress.update(fraction, {
          sim: state.sim_time_s.toFixed(0),
          completed: state.completed,
          arrived: state.arrived,
        });
      },
    });
  } catch (error) {
    progress.stop();
    // A run that could not start leaves no empty output directory behind.
    if (createdOutDir && readdirSync(outDir).length === 0) rmdirSync(outDir);
    throw error;
  }
  progress.stop();
  const files = [...result.files];
  if (upstreamOutputs !== undefined) files.push(...upstreamOutputs.write(outDir, result.outcome.instances));
  if (options.charts !== false && result.timeline !== undefined && result.timeline.length > 0) {
    files.push(...(await writeTimelineChart(outDir, result.timeline, name)));
  }

  if (options.json === true) process.stdout.write(summaryToJson(result.summary));
  else {
    process.stdout.write(`${formatSummaryTable(result.summary)}\n`);
    process.stdout.write(`\nwrote ${files.join(", ")}\n`);
  }
  // On stderr, so they show with --json too without touching the JSON on stdout.
  for (const line of runWarnings(loaded, result)) process.stderr.write(`${line}\n`);
}

function runWarnings(loaded: LoadedConfig, result: RunResult): string[] {
  const lines: string[] = [];
  if (result.outcome.stalled) {
    lines.push(
      "warning: the run stopped because no request completed for 3 simulated hours after the last arrival " +
        "(the fleet cannot serve what is left: see instances.csv and the unfinished count)",
    );
  }
  if (result.outcome.rejected > 0) {
    lines.push(
      `warning: ${result.outcome.rejected} requests need more KV cache (prompt + output tokens) than any instance holds and were refused ` +
        `(first ids: ${result.outcome.rejectedExamples.join(", ")}); they count as SLO misses`,
    );
  }
  for (const note of runNotes(loaded.config, result)) lines.push(`note: ${note}`);
  if (result.summary.requests.unfinished > 0) {
    lines.push(
      `note: ${result.summary.requests.unfinished} requests had not finished when the run ended (counted as SLO misses)`,
    );
  }
  return lines;
}

/** timeline.svg and timeline.png: the run over time, for a look without loading the CSV. */
async function writeTimelineChart(
  outDir: string,
  timeline: readonly TimelineRow[],
  name: string,
): Promise<string[]> {
  const interval = timeline[0]!.end_s - timeline[0]!.start_s;
  const svg = await renderSvg(timelineChartSpec(timeline, `${name} over time (${interval} s intervals)`));
  const svgPath = join(outDir, "timeline.svg");
  const pngPath = join(outDir, "timeline.png");
  writeFileSync(svgPath, svg);
  writeFileSync(pngPath, svgToPng(svg));
  return [svgPath, pngPath];
}
