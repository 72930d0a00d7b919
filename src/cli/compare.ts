import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Command } from "commander";
import { formatTable } from "../report/table.ts";
import { TIMELINE_COLUMNS, timelineCsvRow, type TimelineRow } from "../metrics/timeline.ts";
import { csvCell, csvField } from "../metrics/summary.ts";
import { renderSvg, replicasChartSpec, svgToPng, timelineComparisonChartSpec } from "../report/charts.ts";
import { planRuns, runComparison, type ComparedPolicy } from "../simulate/compare.ts";
import { configNotes } from "../simulate/setup.ts";
import { ProgressReporter } from "./progress.ts";
import { addBaseConfigOptions, checkOneBaseConfig, parseThreads } from "./run-options.ts";
import { resolveSimulateConfig, type SimulateOptions } from "./simulate.ts";

interface CompareOptions extends Pick<
  SimulateOptions,
  "config" | "preset" | "trace" | "traceFormat" | "set" | "seed"
> {
  policies: string;
  out?: string;
  threads?: string;
  json?: boolean;
  progress: boolean;
}

export function registerCompareCommand(program: Command): void {
  const command = program
    .command("compare")
    .description(
      "Run several autoscaling policies on the same workload (in parallel) and compare cost and SLOs.",
    )
    .requiredOption(
      "--policies <list>",
      "comma-separated: policy names (`splitscale policies`), names of the config's autoscaling.variants, variants (all of them), static, static:config, name:FILE",
    );
  addBaseConfigOptions(command, "azure-conv-autoscale")
    .option("-o, --out <dir>", "output directory (default: out/compare-<config name>)")
    .option("--json", "print compare.json to stdout instead of the table")
    .option("--no-progress", "do not draw the progress bar")
    .addHelpText(
      "after",
      `
Examples:
  splitscale compare --policies static,sla,hpa,kpa,kthena,everai
  splitscale compare --preset azure-code-autoscale --policies static,sla,hpa-tuned
  splitscale compare -c my.yaml --policies sla,kthena:policies/kthena.yaml --out out/cmp

Writes DIR/compare.json, DIR/compare.csv, DIR/replicas.svg and DIR/replicas.png (replicas per pool
over the arrival rate, one row per policy), DIR/timeline.csv with DIR/timeline.svg/.png (every
policy's run per metrics.timeline_interval_s: TTFT p99, SLO attainment, GPUs), and one run directory
per policy.`,
    )
    .action(async (options: CompareOptions) => {
      await compareCommand(options);
    });
}

function percent(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(2)} %` : "-";
}

function fixed(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? "-" : value.toFixed(digits);
}

export function compareTable(rows: readonly ComparedPolicy[]): string {
  return formatTable(
    [
      "policy",
      "GPU-hours",
      "cost $",
      "energy kWh",
      "SLO attainment",
      "TTFT p99 ms",
      "TBT p99 ms",
      "scale events",
      "max replicas",
      "completed",
    ],
    rows.map((row) => [
      row.name,
      fixed(row.gpu_hours, 2),
      fixed(row.cost_usd, 2),
      fixed(row.energy_kwh, 2),
      percent(row.slo_attainment),
      fixed(row.ttft_s.p99 * 1000, 1),
      fixed(row.tbt_s.p99 * 1000, 2),
      String(row.scale_events),
      String(row.max_replicas),
      `${row.requests.completed}/${row.requests.arrived}`,
    ]),
    { align: ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right"] },
  );
}

function compareCsv(rows: readonly ComparedPolicy[]): string {
  const header =
    "policy,gpu_hours,cost_usd,energy_kwh,slo_attainment,meets_splitwise_slo,ttft_p50_s,ttft_p90_s,ttft_p99_s,tbt_p50_s,tbt_p90_s,tbt_p99_s,e2e_p99_s,scale_events,max_replicas,requests_arrived,requests_completed";
  const lines = rows.map((row) =>
    [
      row.name,
      row.gpu_hours,
      row.cost_usd,
      row.energy_kwh,
      row.slo_attainment,
      row.meets_splitwise_slo,
      row.ttft_s.p50,
      row.ttft_s.p90,
      row.ttft_s.p99,
      row.tbt_s.p50,
      row.tbt_s.p90,
      row.tbt_s.p99,
      row.e2e_s.p99,
      row.scale_events,
      row.max_replicas,
      row.requests.arrived,
      row.requests.completed,
    ]
      .map(csvCell)
      .join(","),
  );
  return `${header}\n${lines.map((line) => `${line}\n`).join("")}`;
}

/** Every run's timeline rows under a leading `policy` column (long format: one row per policy and interval). */
function comparisonTimelineCsv(
  runs: readonly { readonly name: string; readonly timeline: readonly TimelineRow[] }[],
): string {
  const lines = [`policy,${TIMELINE_COLUMNS.join(",")}`];
  for (const run of runs)
    for (const row of run.timeline) lines.push(`${csvField(run.name)},${timelineCsvRow(row)}`);
  return `${lines.join("\n")}\n`;
}

async function compareCommand(options: CompareOptions): Promise<void> {
  const entries = options.policies
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  checkOneBaseConfig(options);
  const threads = parseThreads(options.threads);
  const { loaded, name } = resolveSimulateConfig({
    ...options,
    preset: options.config === undefined ? (options.preset ?? "azure-conv-autoscale") : undefined,
    progress: false,
  });
  const outDir = options.out ?? join("out", `compare-${name.replace(/[^A-Za-z0-9._-]+/g, "_")}`);
  mkdirSync(outDir, { recursive: true });
  const { runs, peak } = planRuns(loaded, entries);
  for (const note of configNotes(loaded.config)) process.stderr.write(`note: ${note}\n`);

  const progress = new ProgressReporter(
    "compare",
    options.progress && options.json !== true,
    "{bar} {value}/{total} runs | {last}",
  );
  let done = 0;
  const results = await runComparison(loaded, runs, outDir, {
    ...(threads === undefined ? {} : { threads }),
    onDone: (label) => progress.updateCount(++done, runs.length, { last: label }),
  });
  progress.stop();

  const rows = results.map((result) => result.row);
  const report = {
    config: loaded.source,
    seed: loaded.config.seed,
    ...(peak === undefined ? {} : { static_peak: peak }),
    policies: rows,
  };
  const json = `${JSON.stringify(report, (_key, value: unknown) => (typeof value === "number" && !Number.isFinite(value) ? null : value), 2)}\n`;
  writeFileSync(join(outDir, "compare.json"), json);
  writeFileSync(join(outDir, "compare.csv"), compareCsv(rows));
  const points = results.flatMap((result) => result.points);
  const svg = await renderSvg(replicasChartSpec(points, `replicas per pool and load: ${name}`));
  writeFileSync(join(outDir, "replicas.svg"), svg);
  writeFileSync(join(outDir, "replicas.png"), svgToPng(svg));
  const runsOverTime = results.map((result) => ({ name: result.row.name, timeline: result.timeline }));
  writeFileSync(join(outDir, "timeline.csv"), comparisonTimelineCsv(runsOverTime));
  const timelineSvg = await renderSvg(
    timelineComparisonChartSpec(runsOverTime, `policies over time: ${name}`),
  );
  writeFileSync(join(outDir, "timeline.svg"), timelineSvg);
  writeFileSync(join(outDir, "timeline.png"), svgToPng(timelineSvg));

  if (options.json === true) {
    process.stdout.write(json);
    return;
  }
  process.stdout.write(`${compareTable(rows)}\n`);
  process.stdout.write(
    `\nwrote ${["compare.json", "compare.csv", "replicas.svg", "replicas.png", "timeline.csv", "timeline.svg", "timeline.png"].map((file) => join(outDir, file)).join(", ")}\n`,
  );
}
