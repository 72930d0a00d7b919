// Grid search over the main knobs of each baseline autoscaler on an autoscaling preset, so that
// docs/results.md compares `sla` against honestly tuned baselines rather than their untuned defaults:
//   node --import tsx bench/tune-baselines.ts [--preset azure-conv-autoscale] \
//     [--policies hpa,kpa,kthena,everai,threshold] [--quick] [--threads N] [--write-variants] \
//     [--out DIR (run directories; default out/tune-<preset>)] [--results FILE] [--grid JSON]
//
// Every candidate is a variant of the preset (its pools, startup delay and decision interval unchanged)
// and runs through the same machinery as `splitscale compare` (planRuns + runComparison, one worker
// thread per run), so a winner written into the preset's `autoscaling.variants` reproduces exactly.
//
// Selection rule, per policy: among the candidates with SLO attainment >= 0.99, the one with the fewest
// GPU-hours (ties: higher attainment); if none reaches 0.99, the one with the highest attainment, and
// the table says so.
//
// Writes bench/tuning-results.json (results of other presets already in the file are kept) and, with
// --write-variants, `autoscaling.variants.<policy>-tuned` into presets/<preset>.yaml (comments kept).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { format, resolveConfig } from "prettier";
import { parseDocument } from "yaml";
import { loadConfigFile, type LoadedConfig } from "../src/config/config.ts";
import { presetPath } from "../src/config/presets.ts";
import { formatTable } from "../src/report/table.ts";
import { planRuns, runComparison, type ComparedPolicy } from "../src/simulate/compare.ts";

const TARGET_ATTAINMENT = 0.99;
const RESULTS_FILE = fileURLToPath(new URL("./tuning-results.json", import.meta.url));

type Knobs = Readonly<Record<string, number | string>>;
type Grid = Readonly<Record<string, readonly (number | string)[]>>;

interface Candidate {
  readonly knobs: Knobs;
  readonly policy_config: Record<string, unknown>;
}

interface Tuner {
  /** What the knobs mean (for the table header and the JSON). */
  readonly knobs: Readonly<Record<string, string>>;
  /**
   * Values per knob: `quick` for --quick, a preset's own grid where the workload needs another range
   * (the code trace's long prompts keep prefill replicas busier per request), else `default`.
   */
  readonly grids: { readonly quick: Grid; readonly default: Grid } & Readonly<Record<string, Grid>>;
  /** A policy config for one point of the grid. */
  readonly config: (knobs: Knobs) => Record<string, unknown>;
  /** One line for the variant's description. */
  readonly describe: (knobs: Knobs) => string;
}

const num = (knobs: Knobs, key: string): number => {
  const value = knobs[key];
  if (typeof value !== "number") throw new Error(`knob ${key} is not a number`);
  return value;
};

const concurrency = (target: number) => [
  { type: "pods", metric: "concurrent_requests", target_average_value: target },
];

/** Seed 003's AutoscalingPolicy behavior, in kthena's snake_case (what loadKthenaPolicyText yields). */
const SEED_003_BEHAVIOR = {
  scale_up: {
    stable: { instances: 4, percent: 100, period_s: 60, select_policy: "Or", stabilization_window_s: 0 },
    panic: { percent: 1000, period_s: 0, threshold_percent: 150, hold_s: 300 },
  },
  scale_down: { instances: 1, percent: 100, period_s: 15, select_policy: "Or", stabilization_window_s: 180 },
};

const TUNERS: Readonly<Record<string, Tuner>> = {
  hpa: {
    knobs: {
      prefill_target: "prefill pool: pods concurrent_requests target_average_value",
      decode_target: "decode pool: pods concurrent_requests target_average_value",
      down_stab_s: "behavior.scale_down.stabilization_window_s (both pools)",
    },
    grids: {
      quick: { prefill_target: [1, 2], decode_target: [48], down_stab_s: [300] },
      default: {
        prefill_target: [2, 2.5, 3],
        decode_target: [32, 48, 56, 64],
        down_stab_s: [120, 300, 600],
      },
      "azure-code-autoscale": {
        prefill_target: [0.15, 0.25, 0.35, 0.5, 0.75],
        decode_target: [8, 12, 16, 24],
        down_stab_s: [300, 600],
      },
    },
    config: (k) => ({
      behavior: { scale_down: { stabilization_window_s: num(k, "down_stab_s") } },
      pools: {
        prefill: { metrics: concurrency(num(k, "prefill_target")) },
        decode: { metrics: concurrency(num(k, "decode_target")) },
      },
    }),
    describe: (k) =>
      `HPA on concurrent_requests per replica (prefill ${k.prefill_target}, decode ${k.decode_target}), ` +
      `scale-down stabilization ${k.down_stab_s} s`,
  },
  kpa: {
    knobs: {
      prefill_target: "pools.prefill.target (concurrency; x target_utilization 0.7)",
      decode_target: "pools.decode.target (concurrency; x target_utilization 0.7)",
      down_delay_s: "scale_down_delay_s (both pools)",
      gateway_queue: "gateway_queue (prefill: whether requests held at the gateway count as concurrency)",
    },
    grids: {
      quick: { prefill_target: [0.75, 1], decode_target: [64], down_delay_s: [120], gateway_queue: ["auto"] },
      default: {
        prefill_target: [1.5, 2, 2.5],
        decode_target: [48, 64, 80],
        down_delay_s: [600, 1200],
        gateway_queue: ["auto", "exclude"],
      },
      "azure-code-autoscale": {
        prefill_target: [0.25, 0.35, 0.5],
        decode_target: [8, 16, 32],
        down_delay_s: [600, 1200],
        gateway_queue: ["auto", "exclude"],
      },
    },
    config: (k) => ({
      target_utilization: 0.7,
      scale_down_delay_s: num(k, "down_delay_s"),
      pools: {
        prefill: { target: num(k, "prefill_target"), gateway_queue: k.gateway_queue },
        decode: { target: num(k, "decode_target") },
      },
    }),
    describe: (k) =>
      `KPA concurrency target per replica (prefill ${k.prefill_target}, decode ${k.decode_target}) at ` +
      `70 % utilization, scale-down delay ${k.down_delay_s} s, prefill gateway_queue ${k.gateway_queue}`,
  },
  kthena: {
    knobs: {
      prefill_target: "role prefill: concurrent_requests target_value",
      decode_target: "role decode: concurrent_requests target_value",
    },
    grids: {
      quick: { prefill_target: [1, 2], decode_target: [48] },
      default: { prefill_target: [1, 1.5, 1.75, 2, 2.25, 2.5, 3], decode_target: [32, 40, 48, 56, 64] },
      "azure-code-autoscale": {
        prefill_target: [0.15, 0.2, 0.25, 0.35, 0.5, 0.75],
        decode_target: [6, 8, 12, 16, 24],
      },
    },
    config: (k) => ({
      name: "kthena-tuned",
      tolerance_percent: 10,
      behavior: SEED_003_BEHAVIOR,
      target: {
        kind: "disaggregated",
        roles: {
          prefill: {
            min_replicas: 1,
            max_replicas: 16,
            metrics: [{ name: "concurrent_requests", target_value: num(k, "prefill_target") }],
          },
          decode: {
            min_replicas: 1,
            max_replicas: 16,
            metrics: [{ name: "concurrent_requests", target_value: num(k, "decode_target") }],
          },
        },
      },
    }),
    describe: (k) =>
      `Kthena disaggregated target on concurrent_requests per replica (prefill ${k.prefill_target}, ` +
      `decode ${k.decode_target}), seed 003's behavior (tolerance 10 %, panic 150 % held 5 min, ` +
      `scale-down stabilization 3 min)`,
  },
  everai: {
    knobs: {
      max_queue_size: "max_queue_size (requests held at the gateway before scaling up)",
      scale_up_step: "scale_up_step",
      max_idle_time: "max_idle_time (s)",
    },
    grids: {
      quick: { max_queue_size: [1], scale_up_step: [1], max_idle_time: [60, 120] },
      default: { max_queue_size: [0, 1, 4, 8], scale_up_step: [1, 2], max_idle_time: [15, 30, 60, 120, 300] },
      "azure-code-autoscale": {
        max_queue_size: [0, 2, 8],
        scale_up_step: [2, 4, 8],
        max_idle_time: [300, 600, 1200],
      },
    },
    config: (k) => ({
      min_workers: 1,
      max_workers: 16,
      max_queue_size: num(k, "max_queue_size"),
      scale_up_step: num(k, "scale_up_step"),
      max_idle_time: num(k, "max_idle_time"),
    }),
    describe: (k) =>
      `EverAI SimpleAutoScaler, 1..16 workers per pool, max_queue_size ${k.max_queue_size}, ` +
      `scale_up_step ${k.scale_up_step}, max_idle_time ${k.max_idle_time} s`,
  },
  threshold: {
    knobs: {
      up: "scale_up_threshold",
      down: "scale_down_threshold",
      prefill_tokens: "prefill_tokens_per_replica",
      cooldown_s: "cooldown_s",
    },
    grids: {
      quick: { up: [0.8], down: [0.3], prefill_tokens: [5000], cooldown_s: [5, 60] },
      default: {
        up: [0.6, 0.8],
        down: [0.1, 0.2],
        prefill_tokens: [500, 750, 1250],
        cooldown_s: [60, 90, 120],
      },
      "azure-code-autoscale": {
        up: [0.6, 0.8],
        down: [0.1, 0.2],
        prefill_tokens: [2500, 5000, 10000],
        cooldown_s: [120, 240, 480],
      },
    },
    config: (k) => ({
      scale_up_threshold: num(k, "up"),
      scale_down_threshold: num(k, "down"),
      prefill_tokens_per_replica: num(k, "prefill_tokens"),
      cooldown_s: num(k, "cooldown_s"),
    }),
    describe: (k) =>
      `seeds' threshold autoscaler: up ${k.up}, down ${k.down}, ${k.prefill_tokens} queued prompt ` +
      `tokens per prefill replica, cooldown ${k.cooldown_s} s`,
  },
};

/** Every point of a grid (cartesian product, first knob slowest). */
function expand(grid: Grid): Knobs[] {
  let points: Record<string, number | string>[] = [{}];
  for (const [key, values] of Object.entries(grid)) {
    points = points.flatMap((point) => values.map((value) => ({ ...point, [key]: value })));
  }
  return points;
}

const knobLabel = (knobs: Knobs): string =>
  Object.entries(knobs)
    .map(([key, value]) => `${key}=${value}`)
    .join(" ");

interface TunedRun {
  readonly knobs: Knobs;
  readonly gpu_hours: number | null;
  readonly cost_usd: number | null;
  readonly slo_attainment: number;
  readonly ttft_p99_s: number;
  readonly tbt_p99_s: number;
  readonly scale_events: number;
  readonly max_replicas: number;
  readonly completed: number;
  readonly arrived: number;
}

interface PolicyResult {
  readonly policy: string;
  readonly knobs: Readonly<Record<string, string>>;
  readonly grid: Grid;
  /** Whether the winner reaches the target attainment (false: the best attainment was taken). */
  readonly reached_target: boolean;
  readonly winner: TunedRun & {
    readonly policy_config: Record<string, unknown>;
    readonly description: string;
  };
  /** Runs no other run beats on both GPU-hours and attainment, cheapest first. */
  readonly pareto: readonly TunedRun[];
  readonly runs: readonly TunedRun[];
}

/** The GPU-hours / attainment frontier: each run is better in attainment than every cheaper one. */
function paretoFront(runs: readonly TunedRun[]): TunedRun[] {
  const front: TunedRun[] = [];
  for (const run of [...runs].sort((a, b) => gpuHours(a) - gpuHours(b) || attainment(b) - attainment(a))) {
    const last = front.at(-1);
    if (last === undefined || attainment(run) > attainment(last)) front.push(run);
  }
  return front;
}

function toRun(knobs: Knobs, row: ComparedPolicy): TunedRun {
  return {
    knobs,
    gpu_hours: row.gpu_hours,
    cost_usd: row.cost_usd,
    slo_attainment: row.slo_attainment,
    ttft_p99_s: row.ttft_s.p99,
    tbt_p99_s: row.tbt_s.p99,
    scale_events: row.scale_events,
    max_replicas: row.max_replicas,
    completed: row.requests.completed,
    arrived: row.requests.arrived,
  };
}

const gpuHours = (run: TunedRun): number => run.gpu_hours ?? Number.POSITIVE_INFINITY;
const attainment = (run: TunedRun): number =>
  Number.isFinite(run.slo_attainment) ? run.slo_attainment : Number.NEGATIVE_INFINITY;

/** The selection rule of the header comment. */
function selectWinner(runs: readonly TunedRun[]): { index: number; reached: boolean } {
  let best = -1;
  for (const [index, run] of runs.entries()) {
    if (attainment(run) < TARGET_ATTAINMENT) continue;
    const current = best < 0 ? undefined : runs[best]!;
    if (
      current === undefined ||
      gpuHours(run) < gpuHours(current) ||
      (gpuHours(run) === gpuHours(current) && attainment(run) > attainment(current))
    ) {
      best = index;
    }
  }
  if (best >= 0) return { index: best, reached: true };
  for (const [index, run] of runs.entries()) {
    const current = best < 0 ? undefined : runs[best]!;
    if (
      current === undefined ||
      attainment(run) > attainment(current) ||
      (attainment(run) === attainment(current) && gpuHours(run) < gpuHours(current))
    ) {
      best = index;
    }
  }
  if (best < 0) throw new Error("no run to select from");
  return { index: best, reached: false };
}

function resultTable(result: PolicyResult): string {
  const knobNames = Object.keys(result.knobs);
  const sorted = [...result.runs].sort((a, b) => gpuHours(a) - gpuHours(b));
  const winnerKey = knobLabel(result.winner.knobs);
  return formatTable(
    [
      "",
      ...knobNames,
      "GPU-hours",
      "SLO attainment",
      "TTFT p99 ms",
      "TBT p99 ms",
      "scale events",
      "max replicas",
    ],
    sorted.map((run) => [
      knobLabel(run.knobs) === winnerKey ? "*" : attainment(run) >= TARGET_ATTAINMENT ? "ok" : "",
      ...knobNames.map((name) => String(run.knobs[name])),
      run.gpu_hours === null ? "-" : run.gpu_hours.toFixed(2),
      `${(run.slo_attainment * 100).toFixed(2)} %`,
      (run.ttft_p99_s * 1000).toFixed(1),
      (run.tbt_p99_s * 1000).toFixed(2),
      String(run.scale_events),
      String(run.max_replicas),
    ]),
    {
      title:
        `${result.policy}: ${result.runs.length} runs; * = winner` +
        (result.reached_target
          ? ` (fewest GPU-hours at >= ${TARGET_ATTAINMENT * 100} % attainment)`
          : ` (NO configuration reached ${TARGET_ATTAINMENT * 100} %: highest attainment taken)`),
      align: [
        "left",
        ...knobNames.map(() => "right" as const),
        "right",
        "right",
        "right",
        "right",
        "right",
        "right",
      ],
    },
  );
}

/** Sets `autoscaling.variants.<policy>-tuned` in the preset file, keeping its comments and layout. */
function writeVariants(preset: string, results: readonly PolicyResult[]): void {
  const path = presetPath(preset);
  const document = parseDocument(readFileSync(path, "utf8"));
  for (const result of results) {
    document.setIn(["autoscaling", "variants", `${result.policy}-tuned`], {
      policy: result.policy,
      description: result.winner.description,
      policy_config: result.winner.policy_config,
    });
  }
  writeFileSync(path, document.toString({ lineWidth: 0 }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      preset: { type: "string", default: "azure-conv-autoscale" },
      policies: { type: "string", default: Object.keys(TUNERS).join(",") },
      quick: { type: "boolean", default: false },
      threads: { type: "string" },
      out: { type: "string" },
      "write-variants": { type: "boolean", default: false },
      grid: { type: "string" },
      results: { type: "string", default: RESULTS_FILE },
    },
  });
  const preset = values.preset;
  // --grid '{"kpa": {"prefill_target": [0.5, 1]}}' replaces those knobs' values (for exploration).
  const gridOverrides = (values.grid === undefined ? {} : JSON.parse(values.grid)) as Record<
    string,
    Record<string, (number | string)[]>
  >;
  const gridOf = (policy: string): Grid => {
    const grids = TUNERS[policy]!.grids;
    const grid = values.quick ? grids.quick : (grids[preset] ?? grids.default);
    const override = gridOverrides[policy] ?? {};
    for (const key of Object.keys(override)) {
      if (!(key in grid))
        throw new Error(`--grid: ${policy} has no knob "${key}" (knobs: ${Object.keys(grid).join(", ")})`);
    }
    return { ...grid, ...override };
  };
  const policies = values.policies
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  for (const policy of policies) {
    if (TUNERS[policy] === undefined) {
      throw new Error(`--policies: no tuner for "${policy}" (known: ${Object.keys(TUNERS).join(", ")})`);
    }
  }
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  const loaded = loadConfigFile(presetPath(preset));
  const autoscaling = loaded.config.autoscaling;
  if (autoscaling === undefined) throw new Error(`preset ${preset} has no autoscaling block`);

  // Every candidate as a variant of the preset (the preset's own variants are dropped), so that
  // planRuns assembles and validates its config exactly as `compare --policies <variant>` will.
  const candidates = new Map<string, { policy: string; candidate: Candidate }>();
  for (const policy of policies) {
    const tuner = TUNERS[policy]!;
    for (const knobs of expand(gridOf(policy))) {
      candidates.set(`${policy} ${knobLabel(knobs)}`, {
        policy,
        candidate: { knobs, policy_config: tuner.config(knobs) },
      });
    }
  }
  const variants = Object.fromEntries(
    [...candidates].map(([label, { policy, candidate }]) => [
      label,
      { policy, policy_config: candidate.policy_config },
    ]),
  );
  const tuning: LoadedConfig = {
    ...loaded,
    config: { ...loaded.config, autoscaling: { ...autoscaling, variants } },
  };
  const { runs } = planRuns(tuning, [...candidates.keys()]);
  const outDir = values.out ?? join("out", `tune-${preset}`);
  process.stderr.write(
    `tuning ${policies.join(", ")} on ${preset}: ${runs.length} runs, run directories in ${outDir}\n`,
  );
  const started = Date.now();
  let done = 0;
  const outputs = await runComparison(tuning, runs, outDir, {
    ...(threads === undefined ? {} : { threads }),
    onDone: (label) => {
      done++;
      if (done % 10 === 0 || done === runs.length) {
        process.stderr.write(
          `  ${done}/${runs.length} (${((Date.now() - started) / 1000).toFixed(0)} s) ${label}\n`,
        );
      }
    },
  });
  const rows = new Map(outputs.map((output) => [output.row.name, output.row]));

  const results: PolicyResult[] = policies.map((policy) => {
    const tuner = TUNERS[policy]!;
    const mine = [...candidates].filter(([, entry]) => entry.policy === policy);
    const tunedRuns = mine.map(([label, { candidate }]) => toRun(candidate.knobs, rows.get(label)!));
    const { index, reached } = selectWinner(tunedRuns);
    const winner = tunedRuns[index]!;
    const description =
      `${tuner.describe(winner.knobs)}; tuned on ${preset} by bench/tune-baselines.ts` +
      (reached ? "" : ` (best attainment; none reached ${TARGET_ATTAINMENT * 100} %)`);
    return {
      policy,
      knobs: tuner.knobs,
      grid: gridOf(policy),
      reached_target: reached,
      winner: { ...winner, policy_config: tuner.config(winner.knobs), description },
      pareto: paretoFront(tunedRuns),
      runs: tunedRuns,
    };
  });

  for (const result of results) process.stdout.write(`\n${resultTable(result)}\n`);
  process.stdout.write(`\nwinners on ${preset}:\n`);
  for (const result of results) {
    const w = result.winner;
    process.stdout.write(
      `  ${result.policy}-tuned: ${knobLabel(w.knobs)} → ${w.gpu_hours?.toFixed(2)} GPU-h, ` +
        `${(w.slo_attainment * 100).toFixed(2)} %${result.reached_target ? "" : " (below target)"}\n`,
    );
  }

  const resultsFile = values.results;
  const previous: Record<string, unknown> = existsSync(resultsFile)
    ? (JSON.parse(readFileSync(resultsFile, "utf8")) as Record<string, unknown>)
    : {};
  const presets = (previous.presets ?? {}) as Record<string, Record<string, unknown>>;
  presets[preset] = {
    ...(presets[preset] ?? {}),
    ...Object.fromEntries(results.map((result) => [result.policy, { ...result, quick: values.quick }])),
  };
  const report = {
    selection_rule: `fewest GPU-hours among slo_attainment >= ${TARGET_ATTAINMENT}; else highest attainment`,
    presets,
  };
  // Formatted as `prettier --check .` (npm run lint) expects.
  const prettierOptions = (await resolveConfig(resultsFile)) ?? {};
  writeFileSync(resultsFile, await format(JSON.stringify(report), { ...prettierOptions, parser: "json" }));
  process.stdout.write(`\nwrote ${relative(process.cwd(), resultsFile)}\n`);
  if (values["write-variants"]) {
    writeVariants(preset, results);
    process.stdout.write(
      `wrote ${results.map((r) => `${r.policy}-tuned`).join(", ")} into ${presetPath(preset)}\n`,
    );
  }
}

await main();
