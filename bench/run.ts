// Simulator benchmarks: prints a table and writes bench/results.json.
//   npm run bench                         # everything: 5 runs of each Azure replay, 1 run of 10M requests
//   npm run bench -- --only azure         # azure-hh, azure-baseline (or name them: --only azure-hh,10m)
//   npm run bench -- --quick              # CI smoke: 1 run each, 100k instead of 10M requests
//   npm run bench -- --runs 3 --out FILE
// Every benchmark runs the CLI as a child process, so its peak memory is measured alone
// (/usr/bin/time when present, else polling the child's VmHWM), and reads the simulation wall time
// from the summary (`wall_s`: building the cluster and running the event loop, streaming the workload
// through it; not process start-up or writing outputs) next to the wall time of the whole process.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from "node:os";
import { isAbsolute, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { REFERENCE, referenceRun } from "./reference-runs.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(ROOT, "bin", "splitscale.js");
const GNU_TIME = "/usr/bin/time";

interface Benchmark {
  readonly id: string;
  readonly title: string;
  /** CLI arguments after `splitscale`. */
  readonly args: (quick: boolean) => string[];
  readonly defaultRuns: number;
  /** Targets for the simulation wall time and the peak memory of the process. */
  readonly target?: { readonly wall_s?: number; readonly max_rss_mb?: number };
  /** Quick mode runs a smaller workload: its figures are not held against the target. */
  readonly quickIsScaledDown?: boolean;
  /** Upstream splitwise-sim's figures for the same run (summary_table.csv row), if any. */
  readonly upstreamRun?: string;
  readonly available: () => string | true;
}

function azure(id: string, run: string, title: string, target?: Benchmark["target"]): Benchmark {
  const { config, trace } = referenceRun(run);
  return {
    id,
    title,
    args: () => ["simulate", "--splitwise-config", config, "--trace", trace],
    defaultRuns: 5,
    ...(target === undefined ? {} : { target }),
    upstreamRun: run,
    available: () =>
      existsSync(config) && existsSync(trace) ? true : `reference run ${run} not found under ${REFERENCE}`,
  };
}

const TEN_MILLION_CONFIG = join(ROOT, "bench", "configs", "poisson-10m-llama2-70b.yaml");

const BENCHMARKS: readonly Benchmark[] = [
  azure(
    "azure-hh",
    "azure_replay_splitwise_hh_3p1t_mixedpool",
    "Azure conv 1 h (19,366 req), Splitwise-HH 3P+1T DGX-H100, mixed_pool",
    { wall_s: 0.5 },
  ),
  azure(
    "azure-baseline",
    "azure_replay_baseline_h4_tokenjsq",
    "Azure conv 1 h (19,366 req), Baseline 4 DGX-H100, token_jsq",
  ),
  {
    id: "10m",
    title: "10M generated req (Poisson 1,500/s), 400 llama2-70b TP4 instances, token_jsq",
    args: (quick) => [
      "simulate",
      "--config",
      TEN_MILLION_CONFIG,
      ...(quick ? ["--set", "workload.num_requests=100000"] : []),
    ],
    defaultRuns: 1,
    target: { wall_s: 60, max_rss_mb: 2048 },
    quickIsScaledDown: true,
    available: () => true,
  },
];

interface Options {
  only: Set<string> | undefined;
  quick: boolean;
  runs: number | undefined;
  out: string;
}

function parseArgs(argv: readonly string[]): Options {
  const options: Options = { only: undefined, quick: false, runs: undefined, out: "" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === "--quick") options.quick = true;
    else if (arg === "--only") {
      const names = value()
        .split(",")
        .map((name) => name.trim())
        .filter((name) => name !== "")
        .flatMap((name) => (name === "azure" ? ["azure-hh", "azure-baseline"] : [name]));
      for (const name of names) {
        if (!BENCHMARKS.some((b) => b.id === name))
          throw new Error(
            `unknown benchmark "${name}" (known: azure, ${BENCHMARKS.map((b) => b.id).join(", ")})`,
          );
      }
      options.only = new Set(names);
    } else if (arg === "--runs") {
      const runs = Number(value());
      if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs expects a positive integer");
      options.runs = runs;
    } else if (arg === "--out") options.out = value();
    else if (arg === "--help" || arg === "-h") {
      process.stdout.write(
        "usage: npm run bench -- [--only azure|azure-hh,azure-baseline,10m] [--quick] [--runs N] [--out FILE]\n",
      );
      process.exit(0);
    } else throw new Error(`unknown option ${arg}`);
  }
  if (options.out === "")
    options.out = join(ROOT, "bench", options.quick ? "results-quick.json" : "results.json");
  return options;
}

interface Measurement {
  readonly sim_wall_s: number;
  readonly process_wall_s: number;
  readonly process_cpu_s: number | null;
  readonly max_rss_mb: number | null;
  readonly events: number;
  readonly requests: number;
  readonly sim_end_s: number;
  /** Shows the fleet carried the load (a benchmark of an overloaded run measures something else). */
  readonly slo_attainment: number;
  readonly ttft_p99_s: number;
}

interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly wall_s: number;
  readonly maxRssKb: number | null;
  /** User + system CPU seconds of the child (from /usr/bin/time), less sensitive to a busy machine. */
  readonly cpu_s: number | null;
}

/** Peak RSS of a running process (VmHWM), or null off Linux. */
function peakRssKb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

function runChild(args: readonly string[], scratch: string): Promise<ChildResult> {
  const useTime = existsSync(GNU_TIME);
  const timeFile = join(scratch, "time.txt");
  const command = useTime ? GNU_TIME : process.execPath;
  const argv = useTime ? ["-f", "%M %U %S", "-o", timeFile, process.execPath, BIN, ...args] : [BIN, ...args];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    let polledKb: number | null = null;
    const poll = useTime
      ? undefined
      : setInterval(() => {
          const kb = child.pid === undefined ? null : peakRssKb(child.pid);
          if (kb !== null) polledKb = Math.max(polledKb ?? 0, kb);
        }, 50);
    child.on("error", reject);
    child.on("close", (code) => {
      const wall_s = (performance.now() - started) / 1000;
      if (poll !== undefined) clearInterval(poll);
      let maxRssKb = polledKb;
      let cpu_s: number | null = null;
      if (useTime && existsSync(timeFile)) {
        const lines = readFileSync(timeFile, "utf8").trim().split("\n");
        const [kb, user, system] = (lines.at(-1) ?? "").split(" ").map(Number);
        if (kb !== undefined && Number.isFinite(kb)) maxRssKb = kb;
        if (user !== undefined && system !== undefined && Number.isFinite(user + system))
          cpu_s = user + system;
      }
      resolve({ code, stdout, stderr, wall_s, maxRssKb, cpu_s });
    });
  });
}

async function measure(benchmark: Benchmark, quick: boolean, scratch: string): Promise<Measurement> {
  const out = join(scratch, benchmark.id);
  const result = await runChild([...benchmark.args(quick), "--json", "--no-progress", "--out", out], scratch);
  if (result.code !== 0) {
    throw new Error(`${benchmark.id}: splitscale exited with ${result.code}\n${result.stderr.slice(-4000)}`);
  }
  const summary = JSON.parse(result.stdout) as {
    wall_s: number;
    events: number;
    sim_end_s: number;
    requests: { arrived: number; completed: number };
    slo: { attainment: number };
    ttft_s: { p99: number };
  };
  if (summary.requests.completed !== summary.requests.arrived) {
    throw new Error(
      `${benchmark.id}: only ${summary.requests.completed} of ${summary.requests.arrived} requests completed`,
    );
  }
  return {
    sim_wall_s: summary.wall_s,
    process_wall_s: result.wall_s,
    process_cpu_s: result.cpu_s,
    max_rss_mb: result.maxRssKb === null ? null : result.maxRssKb / 1024,
    events: summary.events,
    requests: summary.requests.completed,
    sim_end_s: summary.sim_end_s,
    slo_attainment: summary.slo.attainment,
    ttft_p99_s: summary.ttft_s.p99,
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

interface Upstream {
  readonly wall_s: number;
  readonly max_rss_mb: number;
}

function upstreamFigures(): Map<string, Upstream> {
  const figures = new Map<string, Upstream>();
  const path = join(REFERENCE, "summary_table.csv");
  if (!existsSync(path)) return figures;
  const [header = "", ...rows] = readFileSync(path, "utf8").trim().split("\n");
  const columns = header.split(",");
  const wall = columns.indexOf("wall_s");
  const rss = columns.indexOf("max_rss_MB");
  for (const row of rows) {
    const cells = row.split(",");
    figures.set(cells[0]!, { wall_s: Number(cells[wall]), max_rss_mb: Number(cells[rss]) });
  }
  return figures;
}

const round2 = (values: number[]): number[] => values.map((value) => Math.round(value * 100) / 100);

function machine(loadAtStart: number[]): Record<string, unknown> {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    const lscpu = execFileSync("lscpu", { encoding: "utf8" });
    model = /^Model name:\s*(.+)$/m.exec(lscpu)?.[1]?.trim() ?? model;
  } catch {
    // lscpu is optional
  }
  return {
    cpus: availableParallelism(),
    cpu_model: model,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    load_average_at_start: round2(loadAtStart),
    load_average_at_end: round2(loadavg()),
  };
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function format(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits);
}

/** JSON as the repository's prettier writes it, so the results file passes `npm run lint`. */
async function formatJson(value: unknown): Promise<string> {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  try {
    const prettier = await import("prettier");
    return await prettier.format(text, { parser: "json", printWidth: 110 });
  } catch {
    return text;
  }
}

async function main(): Promise<void> {
  const loadAtStart = loadavg();
  const options = parseArgs(process.argv.slice(2));
  const selected = BENCHMARKS.filter((b) => options.only === undefined || options.only.has(b.id));
  const upstream = upstreamFigures();
  const scratch = mkdtempSync(join(tmpdir(), "splitscale-bench-"));
  const results: Record<string, unknown>[] = [];
  const rows: string[][] = [];
  try {
    for (const benchmark of selected) {
      const available = benchmark.available();
      if (available !== true) {
        process.stderr.write(`skip ${benchmark.id}: ${available}\n`);
        continue;
      }
      const runs = options.runs ?? (options.quick ? 1 : benchmark.defaultRuns);
      const measurements: Measurement[] = [];
      for (let i = 0; i < runs; i++) {
        process.stderr.write(`${benchmark.id}: run ${i + 1}/${runs}\r`);
        measurements.push(await measure(benchmark, options.quick, scratch));
      }
      process.stderr.write("\n");
      const simWall = median(measurements.map((m) => m.sim_wall_s));
      const processWall = median(measurements.map((m) => m.process_wall_s));
      const cpuValues = measurements.map((m) => m.process_cpu_s).filter((v): v is number => v !== null);
      const processCpu = cpuValues.length === 0 ? null : median(cpuValues);
      const rssValues = measurements.map((m) => m.max_rss_mb).filter((v): v is number => v !== null);
      const maxRss = rssValues.length === 0 ? null : Math.max(...rssValues);
      const first = measurements[0]!;
      const reference = benchmark.upstreamRun === undefined ? undefined : upstream.get(benchmark.upstreamRun);
      const target = options.quick && benchmark.quickIsScaledDown === true ? undefined : benchmark.target;
      const meetsWall = target?.wall_s === undefined ? null : simWall < target.wall_s;
      const meetsRss =
        target?.max_rss_mb === undefined || maxRss === null ? null : maxRss < target.max_rss_mb;
      results.push({
        id: benchmark.id,
        title: benchmark.title,
        command: `node bin/splitscale.js ${benchmark
          .args(options.quick)
          .map((arg) => (isAbsolute(arg) ? relative(ROOT, arg) : arg))
          .join(" ")} --json --no-progress --out DIR`,
        runs,
        requests: first.requests,
        events: first.events,
        sim_end_s: first.sim_end_s,
        slo_attainment: first.slo_attainment,
        ttft_p99_s: first.ttft_p99_s,
        median_sim_wall_s: simWall,
        median_process_wall_s: processWall,
        median_process_cpu_s: processCpu,
        max_rss_mb: maxRss,
        events_per_s: first.events / simWall,
        requests_per_s: first.requests / simWall,
        sim_wall_s: measurements.map((m) => m.sim_wall_s),
        process_wall_s: measurements.map((m) => m.process_wall_s),
        process_cpu_s: measurements.map((m) => m.process_cpu_s),
        target: target ?? null,
        meets_wall_target: meetsWall,
        meets_rss_target: meetsRss,
        upstream: reference === undefined ? null : { run: benchmark.upstreamRun, ...reference },
        speedup_sim_wall: reference === undefined ? null : reference.wall_s / simWall,
        speedup_process_wall: reference === undefined ? null : reference.wall_s / processWall,
      });
      const verdict = [meetsWall, meetsRss].includes(false) ? "MISSED" : meetsWall === null ? "" : "ok";
      rows.push([
        benchmark.id,
        String(runs),
        first.requests.toLocaleString("en-US"),
        format(simWall, 3),
        format(processWall, 2),
        format(processCpu, 2),
        format(maxRss, 0),
        format(first.requests / simWall / 1000, 0),
        reference === undefined ? "-" : `${format(reference.wall_s, 2)} / ${reference.max_rss_mb}`,
        reference === undefined
          ? "-"
          : `${format(reference.wall_s / simWall, 0)}x / ${format(reference.wall_s / processWall, 0)}x`,
        [
          target?.wall_s === undefined ? "" : `< ${target.wall_s} s`,
          target?.max_rss_mb === undefined ? "" : `< ${target.max_rss_mb} MB`,
          verdict,
        ]
          .filter((part) => part !== "")
          .join(", "),
      ]);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }

  const header = [
    "benchmark",
    "runs",
    "requests",
    "sim wall s (median)",
    "process s (median)",
    "process CPU s",
    "max RSS MB",
    "k req/s",
    "upstream wall s / RSS MB",
    "speed-up sim / process",
    "target",
  ];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => pad(cell, widths[i]!, i > 0 && i < 10)).join("  ");
  process.stdout.write(`${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);

  const report = {
    date: new Date().toISOString(),
    quick: options.quick,
    machine: machine(loadAtStart),
    results,
  };
  writeFileSync(options.out, await formatJson(report));
  process.stdout.write(`\nwrote ${options.out}\n`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
