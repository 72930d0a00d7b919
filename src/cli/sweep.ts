import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Command } from "commander";
import { UsageError } from "../errors.ts";
import { csvCell, csvField } from "../metrics/summary.ts";
import { renderSvg, svgToPng, sweepChartSpec } from "../report/charts.ts";
import { formatTable } from "../report/table.ts";
import {
  checkRunsCanStart,
  runComparison,
  runDirName,
  type ComparedPolicy,
  type PlannedRun,
} from "../simulate/compare.ts";
import { configNotes } from "../simulate/setup.ts";
import { parseSweepAxis, sweepPoints, typedValue, type SweepAxis } from "../simulate/sweep.ts";
import { ProgressReporter } from "./progress.ts";
import { addBaseConfigOptions, checkOneBaseConfig, parseThreads } from "./run-options.ts";
import { resolveSimulateConfig, type SimulateOptions } from "./simulate.ts";

interface SweepOptions extends Pick<
  SimulateOptions,
  "config" | "preset" | "trace" | "traceFormat" | "set" | "seed"
> {
  vary?: string[];
  out?: string;
  threads?: string;
  json?: boolean;
  progress: boolean;
  charts: boolean;
}

/** One run of the sweep: the varied values (by key) and what the run measured. */
interface SweepRow {
  readonly values: Readonly<Record<string, string>>;
  readonly result: ComparedPolicy;
}

/** Repeatable flag without a default (so `--help` does not print one): the first call gets undefined. */
const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function registerSweepCommand(program: Command): void {
  const command = program
    .command("sweep")
    .description(
      "Run one config over a grid of values (arrival rates, fleet sizes, batch limits, ...), in parallel, " +
        "and tabulate and chart SLO attainment, latency and cost against them.",
    )
    .option(
      "--vary <key=values>",
      "a config key and its values: KEY=V1,V2,... or KEY=START:STOP:STEP (repeatable: every combination runs)",
      collect,
    );
  addBaseConfigOptions(command, "azure-conv-splitwise-hh")
    .option("-o, --out <dir>", "output directory (default: out/sweep-<config name>)")
    .option("--json", "print sweep.json to stdout instead of the table")
    .option("--no-progress", "do not draw the progress bar")
    .option("--no-charts", "do not draw sweep.svg/sweep.png")
    .addHelpText(
      "after",
      `
Examples:
  # the load a Splitwise-HH fleet carries: the Azure trace replayed 1x to 2x faster
  splitscale sweep --preset azure-conv-splitwise-hh --vary workload.time_scale=1,0.8,0.67,0.5
  # Poisson load against fleet size: every combination (4 x 3 runs)
  splitscale sweep --preset poisson-llama2-70b --vary workload.arrival.rate_per_s=4:16:4 \\
    --vary cluster.servers.0.count=2,4,6

Writes DIR/sweep.json, DIR/sweep.csv (one row per run: a column per varied key, then GPU-hours,
cost, energy, SLO attainment and TTFT/TBT/E2E percentiles), DIR/sweep.svg and DIR/sweep.png (the
metrics against the first varied key, a line per combination of the others), and one run directory
per combination with the usual simulate outputs but no timeline chart (the sweep charts them together).`,
    )
    .action(async (options: SweepOptions) => {
      await sweepCommand(options);
    });
}

const METRIC_COLUMNS = [
  "gpu_hours",
  "cost_usd",
  "energy_kwh",
  "slo_attainment",
  "meets_splitwise_slo",
  "ttft_p50_s",
  "ttft_p90_s",
  "ttft_p99_s",
  "tbt_p50_s",
  "tbt_p90_s",
  "tbt_p99_s",
  "e2e_p50_s",
  "e2e_p99_s",
  "requests_arrived",
  "requests_completed",
  "run_dir",
] as const;

function metricValues(result: ComparedPolicy): (string | number | boolean | null)[] {
  return [
    result.gpu_hours,
    result.cost_usd,
    result.energy_kwh,
    result.slo_attainment,
    result.meets_splitwise_slo,
    result.ttft_s.p50,
    result.ttft_s.p90,
    result.ttft_s.p99,
    result.tbt_s.p50,
    result.tbt_s.p90,
    result.tbt_s.p99,
    result.e2e_s.p50,
    result.e2e_s.p99,
    result.requests.arrived,
    result.requests.completed,
    result.out_dir,
  ];
}

/** sweep.csv: a column per varied key (its full path), then the metrics; one row per run. */
function sweepCsv(axes: readonly SweepAxis[], rows: readonly SweepRow[]): string {
  const header = [...axes.map((axis) => csvField(axis.key)), ...METRIC_COLUMNS].join(",");
  const lines = rows.map((row) =>
    [...axes.map((axis) => csvField(row.values[axis.key]!)), ...metricValues(row.result).map(csvCell)].join(
      ",",
    ),
  );
  return `${header}\n${lines.map((line) => `${line}\n`).join("")}`;
}

function sweepTable(axes: readonly SweepAxis[], rows: readonly SweepRow[]): string {
  const fixed = (value: number | null, digits: number): string =>
    value === null || !Number.isFinite(value) ? "-" : value.toFixed(digits);
  return formatTable(
    [
      ...axes.map((axis) => axis.key),
      "SLO attainment",
      "meets SLO",
      "TTFT p99 ms",
      "TBT p99 ms",
      "E2E p99 s",
      "GPU-hours",
      "completed",
    ],
    rows.map((row) => [
      ...axes.map((axis) => row.values[axis.key]!),
      Number.isFinite(row.result.slo_attainment) ? `${(row.result.slo_attainment * 100).toFixed(2)} %` : "-",
      row.result.meets_splitwise_slo ? "yes" : "no",
      fixed(row.result.ttft_s.p99 * 1000, 1),
      fixed(row.result.tbt_s.p99 * 1000, 2),
      fixed(row.result.e2e_s.p99, 2),
      fixed(row.result.gpu_hours, 2),
      `${row.result.requests.completed}/${row.result.requests.arrived}`,
    ]),
    { align: [...axes.map(() => "right" as const), ...Array<"right">(7).fill("right")] },
  );
}

async function sweepCommand(options: SweepOptions): Promise<void> {
  checkOneBaseConfig(options);
  const threads = parseThreads(options.threads);
  const axes = (options.vary ?? []).map(parseSweepAxis);
  const points = sweepPoints(axes);
  const preset = options.config === undefined ? (options.preset ?? "azure-conv-splitwise-hh") : undefined;
  const base = resolveSimulateConfig({ ...options, preset, progress: false });
  const directories = new Map<string, string>();
  for (const point of points) {
    const directory = runDirName(point.label);
    const other = directories.get(directory);
    if (other !== undefined)
      throw new UsageError(
        `--vary: "${other}" and "${point.label}" would share the run directory ${directory}`,
      );
    directories.set(directory, point.label);
  }
  // Every combination is resolved and validated before any run starts, so a bad value is reported
  // (with its key) at once rather than after the other runs.
  const runs: PlannedRun[] = points.map((point) => ({
    label: point.label,
    description: point.overrides.join(" "),
    config: resolveSimulateConfig({
      ...options,
      preset,
      varied: point.overrides,
      progress: false,
    }).loaded.config,
  }));
  checkRunsCanStart(base.loaded, runs);
  for (const note of new Set(runs.flatMap((run) => configNotes(run.config))))
    process.stderr.write(`note: ${note}\n`);
  const outDir = options.out ?? join("out", `sweep-${base.name.replace(/[^A-Za-z0-9._-]+/g, "_")}`);
  mkdirSync(outDir, { recursive: true });

  const progress = new ProgressReporter(
    "sweep",
    options.progress && options.json !== true,
    "{bar} {value}/{total} runs | {last}",
  );
  let done = 0;
  const results = await runComparison(base.loaded, runs, outDir, {
    ...(threads === undefined ? {} : { threads }),
    onDone: (label) => progress.updateCount(++done, runs.length, { last: label }),
  });
  progress.stop();

  const rows: SweepRow[] = results.map((result, index) => ({
    values: Object.fromEntries(axes.map((axis, axisIndex) => [axis.key, points[index]!.values[axisIndex]!])),
    result: result.row,
  }));
  const report = {
    config: base.loaded.source,
    seed: base.loaded.config.seed,
    vary: axes.map((axis) => ({ key: axis.key, values: axis.values.map(typedValue) })),
    set: options.set,
    runs: rows.map((row) => ({
      ...Object.fromEntries(Object.entries(row.values).map(([key, value]) => [key, typedValue(value)])),
      ...row.result,
    })),
  };
  const json = `${JSON.stringify(report, (_key, value: unknown) => (typeof value === "number" && !Number.isFinite(value) ? null : value), 2)}\n`;
  const files = ["sweep.json", "sweep.csv"];
  writeFileSync(join(outDir, "sweep.json"), json);
  writeFileSync(join(outDir, "sweep.csv"), sweepCsv(axes, rows));
  if (options.charts) {
    const numeric = (text: string): number | string => (Number.isFinite(Number(text)) ? Number(text) : text);
    const firstKey = axes[0]!.key;
    const chartPoints = rows.map((row) => ({
      x: numeric(row.values[firstKey]!),
      group: axes
        .slice(1)
        .map((axis) => `${axis.key.split(".").pop()!}=${row.values[axis.key]!}`)
        .join(", "),
      slo_attainment: row.result.slo_attainment,
      ttft_p99_s: row.result.ttft_s.p99,
      tbt_p99_s: row.result.tbt_s.p99,
      gpu_hours: row.result.gpu_hours,
    }));
    const svg = await renderSvg(
      sweepChartSpec(
        chartPoints,
        firstKey,
        axes
          .slice(1)
          .map((axis) => axis.key)
          .join(", "),
        `sweep: ${base.name}`,
      ),
    );
    writeFileSync(join(outDir, "sweep.svg"), svg);
    writeFileSync(join(outDir, "sweep.png"), svgToPng(svg));
    files.push("sweep.svg", "sweep.png");
  }

  if (options.json === true) {
    process.stdout.write(json);
    return;
  }
  process.stdout.write(`${sweepTable(axes, rows)}\n`);
  process.stdout.write(`\nwrote ${files.map((file) => join(outDir, file)).join(", ")}\n`);
}
