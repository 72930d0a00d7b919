import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import { autoscalingSchema } from "../config/autoscaling-schema.ts";
import type { LoadedConfig, SimulationConfig } from "../config/config.ts";
import { ConfigError, UsageError, unknownNameMessage } from "../errors.ts";
import type { ScalingSummary } from "../metrics/summary.ts";
import type { TimelineRow } from "../metrics/timeline.ts";
import type { ReplicaPoint } from "../report/charts.ts";
import "../policy/builtin.ts";
import { findPolicy, listPolicies } from "../policy/registry.ts";
import { PACKAGE_ROOT } from "../paths.ts";
import { policyContextFor } from "./autoscaling-setup.ts";
import { buildPolicy } from "./policy-setup.ts";
import { buildSetup } from "./setup.ts";
import { peakFleet, withFixedFleet, type PeakFleet } from "./static-sizing.ts";

/** One row of compare.json (the keys other tools read are fixed by the issue that asked for them). */
export interface ComparedPolicy {
  readonly name: string;
  readonly description: string;
  readonly gpu_hours: number | null;
  readonly cost_usd: number | null;
  readonly energy_kwh: number | null;
  readonly slo_attainment: number;
  readonly meets_splitwise_slo: boolean;
  readonly ttft_s: { mean: number; p50: number; p90: number; p99: number };
  readonly tbt_s: { mean: number; p50: number; p90: number; p99: number };
  readonly e2e_s: { mean: number; p50: number; p90: number; p99: number };
  readonly scale_events: number;
  readonly max_replicas: number;
  readonly gpu_seconds_by_state: ScalingSummary["gpu_seconds_by_state"] | null;
  readonly requests: { arrived: number; completed: number };
  readonly wall_s: number | null;
  readonly out_dir: string;
}

/** What a worker runs: a fully resolved config (with or without autoscaling) under a label. */
export interface CompareTaskInput {
  readonly label: string;
  readonly description: string;
  readonly config: SimulationConfig;
  readonly baseDir: string;
  readonly source: string;
  readonly outDir: string;
}

export interface CompareTaskOutput {
  readonly row: ComparedPolicy;
  readonly points: ReplicaPoint[];
  /** The run over time (its timeline.csv). */
  readonly timeline: readonly TimelineRow[];
}

export interface PlannedRun {
  readonly label: string;
  readonly description: string;
  readonly config: SimulationConfig;
}

/**
 * Turns `--policies` entries into runs. Accepted forms:
 * - `static`: a fixed fleet sized for the workload's peak (see static-sizing.ts);
 * - `static:config`: the config's own start-state fleet, unchanged;
 * - a policy name (`splitscale policies` lists them) or a variant the config defines under
 *   `autoscaling.variants`;
 * - `variants`: every variant under `autoscaling.variants`;
 * - `name:FILE`: the policy in a policy file (splitscale policy YAML, or MatrixInfer/Kthena YAML).
 */
export function planRuns(
  loaded: LoadedConfig,
  entries: readonly string[],
): { runs: PlannedRun[]; peak?: PeakFleet } {
  const base = loaded.config;
  const autoscaling = base.autoscaling ?? autoscalingSchema.parse({});
  const runs: PlannedRun[] = [];
  let peak: PeakFleet | undefined;
  const labels = new Set<string>();
  // `variants` stands for every variant the config defines, in the order it defines them.
  const variantNames = Object.keys(autoscaling.variants);
  if (entries.includes("variants") && variantNames.length === 0)
    throw new UsageError("--policies variants: the config defines no autoscaling.variants");
  const expanded = entries.flatMap((entry) => (entry === "variants" ? variantNames : [entry]));
  for (const entry of expanded) {
    const [name = "", ...rest] = entry.split(":");
    const argument = rest.join(":");
    let run: PlannedRun;
    if (name === "static" && argument === "") {
      peak ??= peakFleet(loaded);
      const sizes = Object.entries(peak.replicas)
        .map(([pool, count]) => `${count} ${pool}`)
        .join(" + ");
      run = {
        label: "static",
        description: `fixed fleet sized for the peak minute (${sizes})`,
        config: withFixedFleet(base, peak.replicas),
      };
    } else if (name === "static" && argument === "config") {
      const { autoscaling: _dropped, applications: _seeds, ...fixed } = base;
      run = { label: "static:config", description: "the config's own fixed fleet", config: fixed };
    } else {
      const variant = autoscaling.variants[name];
      if (variant !== undefined && argument === "") {
        findPolicy(variant.policy, `autoscaling.variants.${name}.policy`);
        const { variants: _variants, ...settings } = autoscaling;
        run = {
          label: name,
          description: variant.description ?? `${variant.policy} (variant)`,
          config: {
            ...base,
            autoscaling: {
              ...settings,
              variants: {},
              policy: variant.policy,
              policy_config: variant.policy_config,
              ...(variant.policy_file === undefined ? {} : { policy_file: variant.policy_file }),
            },
          },
        };
      } else {
        const known = [
          ...new Set([
            ...listPolicies().flatMap((policy) => [policy.name, ...(policy.aliases ?? [])]),
            ...Object.keys(autoscaling.variants),
            "static",
          ]),
        ];
        if (
          argument === "" &&
          !known.includes(name) &&
          listPolicies().every((policy) => !(policy.aliases ?? []).includes(name))
        ) {
          throw new UsageError(`--policies: ${unknownNameMessage("policy", name, known)}`);
        }
        const entryInfo = findPolicy(name, "--policies");
        const ownConfig = autoscaling.policy === entryInfo.name ? autoscaling.policy_config : {};
        run = {
          label: entry,
          description: argument === "" ? entryInfo.description : `${entryInfo.name} from ${argument}`,
          config: {
            ...base,
            autoscaling: {
              ...autoscaling,
              policy: entryInfo.name,
              policy_config: argument === "" ? ownConfig : {},
              ...(argument === "" ? {} : { policy_file: resolve(argument) }),
            },
          },
        };
      }
    }
    if (labels.has(run.label)) throw new UsageError(`--policies: "${run.label}" is listed twice`);
    labels.add(run.label);
    runs.push(run);
  }
  if (runs.length === 0) throw new UsageError("--policies: name at least one policy");
  checkRunsCanStart(loaded, runs);
  return { runs, ...(peak === undefined ? {} : { peak }) };
}

/**
 * Builds every run's fleet and policy once, so a config that cannot run, a bad policy name, config
 * or policy file fails before any run starts (naming the run), not after the others finished.
 */
export function checkRunsCanStart(loaded: LoadedConfig, runs: readonly PlannedRun[]): void {
  for (const run of runs) {
    try {
      const setup = buildSetup(run.config, loaded.baseDir, () => 0);
      const autoscalingConfig = run.config.autoscaling;
      if (autoscalingConfig === undefined) continue;
      const context = policyContextFor(
        run.config,
        autoscalingConfig,
        setup.catalog,
        setup.model,
        setup.perf,
        loaded.source,
      );
      buildPolicy({ ...loaded, config: run.config }, autoscalingConfig, context);
    } catch (error) {
      throw runError(run.label, error);
    }
  }
}

/** A directory name for a label (`rl:out/policy.json` → `rl_out_policy.json`). */
export function runDirName(label: string): string {
  return label.replace(/[^A-Za-z0-9._-]+/g, "_");
}

/**
 * Runs every planned configuration, in parallel on all cores (one worker thread per run; runs are
 * seconds long, so pool overhead does not matter), and returns rows in the order given.
 */
export async function runComparison(
  loaded: LoadedConfig,
  runs: readonly PlannedRun[],
  outDir: string,
  options: { threads?: number; onDone?: (label: string) => void } = {},
): Promise<CompareTaskOutput[]> {
  const threads = Math.max(1, Math.min(options.threads ?? availableParallelism(), runs.length));
  const pool = new Piscina({
    filename: fileURLToPath(new URL(`file://${join(PACKAGE_ROOT, "bin", "worker.js")}`)),
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 1000,
  });
  try {
    return await Promise.all(
      runs.map(async (run) => {
        const input: CompareTaskInput = {
          label: run.label,
          description: run.description,
          config: run.config,
          baseDir: loaded.baseDir,
          source: loaded.source,
          outDir: join(outDir, runDirName(run.label)),
        };
        let output: CompareTaskOutput;
        try {
          output = (await pool.run({ task: "simulate/compare-task", input })) as CompareTaskOutput;
        } catch (error) {
          throw runError(run.label, error);
        }
        options.onDone?.(run.label);
        return output;
      }),
    );
  } finally {
    await pool.destroy();
  }
}

/**
 * A run's error, naming the run. Errors from a worker thread cross the thread boundary as plain
 * errors with their name, so the user-facing kinds (bad input, a config that cannot run) are rebuilt
 * to keep their exit codes and clean messages.
 */
function runError(label: string, error: unknown): Error {
  if (!(error instanceof Error)) return new Error(`run ${label}: ${String(error)}`);
  const message = `run ${label}: ${error.message}`;
  if (error.name === "ConfigError") return new ConfigError(message);
  if (error.name === "UsageError" || error.name === "WorkloadError") return new UsageError(message);
  return error;
}
