import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import type { TopLevelSpec } from "vega-lite";
import type { LoadedConfig } from "../config/config.ts";
import { rlSchema, type RlConfig } from "../config/rl-schema.ts";
import { Rng } from "../core/rng.ts";
import { UsageError } from "../errors.ts";
import { PACKAGE_ROOT } from "../paths.ts";
import { renderSvg, svgToPng } from "../report/charts.ts";
import type { NormalizerState } from "./actor.ts";
import { RL_POLICY_FORMAT, type RlPolicyFile } from "./checkpoint.ts";
import { envSettings, type EnvSettings, type EpisodeSummary } from "./env.ts";
import { gae, PpoAgent, RewardScaler, type AgentState, type UpdateStats } from "./ppo.ts";
import { runEpisode, type RolloutInput, type RolloutOutput } from "./rollout.ts";

/**
 * The training loop: each iteration runs `envs_per_iteration` episodes (seeded windows of the
 * workload) on worker threads with the current actors, then updates every agent with PPO in the main
 * thread. Seeds of episodes, action sampling and minibatch shuffles are derived from (seed,
 * iteration, index), so a run is a function of (config, seed) whatever the thread count, and a run
 * resumed from a checkpoint continues exactly as if it had not stopped.
 */

export interface TrainOptions {
  readonly loaded: LoadedConfig;
  readonly outDir: string;
  /** Decision steps to train for (overrides rl.train.steps). */
  readonly steps?: number;
  /** Default: the config's seed. */
  readonly seed?: number;
  /** A training directory (its checkpoints/latest.json) or a checkpoint file to continue from. */
  readonly resume?: string;
  /** Worker threads for rollouts (default: all cores); 0 runs episodes in the main thread. */
  readonly threads?: number;
  readonly onIteration?: (row: CurveRow, totalSteps: number) => void;
  /** Render learning_curve.svg/png at the end (default true). */
  readonly charts?: boolean;
}

/** One row of learning_curve.csv (one PPO iteration). */
export interface CurveRow {
  readonly iteration: number;
  readonly steps: number;
  readonly episodes: number;
  /** Mean undiscounted episode reward (unscaled). */
  readonly reward: number;
  /** Requests meeting the SLO / requests arrived, over the iteration's episodes. */
  readonly slo_attainment: number;
  /** Mean GPU-hours per episode. */
  readonly gpu_hours: number;
  readonly scale_events: number;
  readonly action_std: number;
  readonly policy_loss: number;
  readonly value_loss: number;
  readonly entropy: number;
  readonly approx_kl: number;
  readonly clip_fraction: number;
  readonly rollout_s: number;
  readonly update_s: number;
  /** Wall seconds since training started (resumed runs continue the count). */
  readonly wall_s: number;
  /** The deterministic policy on the whole workload (NaN in iterations without an evaluation). */
  readonly eval_reward: number;
  readonly eval_slo_attainment: number;
  readonly eval_gpu_hours: number;
}

const CURVE_COLUMNS: readonly (keyof CurveRow)[] = [
  "iteration",
  "steps",
  "episodes",
  "reward",
  "slo_attainment",
  "gpu_hours",
  "scale_events",
  "action_std",
  "policy_loss",
  "value_loss",
  "entropy",
  "approx_kl",
  "clip_fraction",
  "rollout_s",
  "update_s",
  "wall_s",
  "eval_reward",
  "eval_slo_attainment",
  "eval_gpu_hours",
];

/** The `trainer` section of a checkpoint. */
export interface TrainerState {
  readonly iteration: number;
  readonly steps: number;
  readonly seed: number;
  readonly rl: RlConfig;
  readonly agents: readonly AgentState[];
  readonly reward_scalers: readonly NormalizerState[];
  readonly curve: readonly CurveRow[];
  readonly wall_s: number;
  /** The best-evaluated policy so far (what `keep: best` writes as policy.json). */
  readonly best: BestPolicy | null;
}

interface BestPolicy {
  readonly eval_reward: number;
  readonly summary: EpisodeSummary;
  readonly iteration: number;
  readonly steps: number;
  readonly agents: RlPolicyFile["agents"];
}

export interface TrainResult {
  readonly policyPath: string;
  /** The iteration whose policy policy.json holds. */
  readonly policyIteration: number;
  readonly iterations: number;
  readonly steps: number;
  readonly wall_s: number;
  readonly curve: readonly CurveRow[];
  readonly files: readonly string[];
  /** The last evaluation of the policy that policy.json holds (undefined without evaluations). */
  readonly evaluation?: EpisodeSummary;
}

/** A 32-bit seed derived from the run's seed and a label (independent of draws made elsewhere). */
export function derivedSeed(seed: number, label: string): number {
  return new Rng(seed).fork(label).nextUint32();
}

/** A policy file (and, with `trainer`, a checkpoint) for the agents as they are now. */
export function policyFile(
  settings: EnvSettings,
  rl: RlConfig,
  agents: readonly PpoAgent[],
  provenance: Record<string, unknown>,
  trainer?: TrainerState,
): RlPolicyFile {
  return {
    format: RL_POLICY_FORMAT,
    description: `PPO, ${rl.agents} ${rl.action} actions, trained on ${typeof provenance.config === "string" ? provenance.config : "?"}`,
    env: {
      decision_interval_s: settings.interval_s,
      action: rl.action,
      action_scale_step: rl.action_scale_step,
      agents: rl.agents,
      features: {
        pools: settings.spec.pools.map((pool) => ({ name: pool.name, role: pool.role })),
        stack: settings.spec.stack,
        count_scale: settings.spec.count_scale,
        rate_scale: settings.spec.rate_scale,
        ttft_slow_s: settings.spec.ttft_slow_s,
      },
    },
    agents: agents.map((agent) => {
      const snapshot = agent.snapshot();
      return {
        name: agent.name,
        pools: [...agent.pools],
        actor: {
          ...snapshot,
          sizes: [...snapshot.sizes],
          params: Array.from(snapshot.params),
          obs_norm:
            snapshot.obs_norm === null
              ? null
              : {
                  mean: [...snapshot.obs_norm.mean],
                  var: [...snapshot.obs_norm.var],
                  count: snapshot.obs_norm.count,
                },
        },
      };
    }),
    provenance,
    ...(trainer === undefined ? {} : { trainer: trainer as unknown as Record<string, unknown> }),
  };
}

function readCheckpoint(path: string): { file: RlPolicyFile; trainer: TrainerState } {
  const target =
    existsSync(path) && statSync(path).isDirectory() ? join(path, "checkpoints", "latest.json") : path;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(target, "utf8"));
  } catch (error) {
    throw new UsageError(`--resume: cannot read checkpoint ${target}: ${(error as Error).message}`);
  }
  const file = parsed as RlPolicyFile;
  if (file.format !== RL_POLICY_FORMAT || file.trainer === undefined)
    throw new UsageError(
      `--resume: ${target} is not a training checkpoint (policy.json files have no trainer state; use DIR or DIR/checkpoints/latest.json)`,
    );
  return { file, trainer: file.trainer as unknown as TrainerState };
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((sum, value) => sum + value, 0) / values.length;
}

function csvNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : "";
}

export function curveCsv(rows: readonly CurveRow[]): string {
  const lines = rows.map((row) => CURVE_COLUMNS.map((column) => csvNumber(row[column])).join(","));
  return `${CURVE_COLUMNS.join(",")}\n${lines.map((line) => `${line}\n`).join("")}`;
}

/**
 * Reward, SLO attainment and GPU-hours per episode over training steps, one panel each: the sampled
 * training episodes (15-minute windows) and, where evaluated, the deterministic policy on the whole
 * workload (a longer episode, so its reward and GPU-hours are on their own scale).
 */
export function learningCurveSpec(rows: readonly CurveRow[], title: string): TopLevelSpec {
  const panels: { metric: string; train: keyof CurveRow; evaluation: keyof CurveRow; format?: string }[] = [
    { metric: "episode reward", train: "reward", evaluation: "eval_reward" },
    { metric: "SLO attainment", train: "slo_attainment", evaluation: "eval_slo_attainment", format: ".1%" },
    { metric: "GPU-hours per episode", train: "gpu_hours", evaluation: "eval_gpu_hours" },
  ];
  const values: { steps: number; metric: string; series: string; value: number }[] = [];
  for (const row of rows)
    for (const panel of panels) {
      values.push({
        steps: row.steps,
        metric: panel.metric,
        series: "training episodes (sampled)",
        value: row[panel.train],
      });
      const evaluated = row[panel.evaluation];
      if (Number.isFinite(evaluated))
        values.push({
          steps: row.steps,
          metric: panel.metric,
          series: "whole workload (deterministic)",
          value: evaluated,
        });
    }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    data: { values: values.filter((value) => Number.isFinite(value.value)) },
    vconcat: panels.map((panel) => ({
      width: 560,
      height: 120,
      transform: [{ filter: { field: "metric", equal: panel.metric } }],
      mark: { type: "line", point: true, strokeWidth: 1.4 },
      encoding: {
        x: { field: "steps", type: "quantitative", title: "decision steps" },
        y: {
          field: "value",
          type: "quantitative",
          title: panel.metric,
          scale: { zero: false },
          ...(panel.format === undefined ? {} : { axis: { format: panel.format } }),
        },
        color: { field: "series", type: "nominal", title: null, legend: { orient: "bottom" } },
      },
      resolve: { scale: { y: "independent" } },
    })),
  };
}

class Rollouts {
  private pool: Piscina | undefined;
  constructor(threads: number) {
    if (threads > 0)
      this.pool = new Piscina({
        filename: fileURLToPath(new URL(`file://${join(PACKAGE_ROOT, "bin", "worker.js")}`)),
        minThreads: threads,
        maxThreads: threads,
        idleTimeout: 60_000,
      });
  }
  async run(inputs: readonly RolloutInput[]): Promise<RolloutOutput[]> {
    const pool = this.pool;
    if (pool === undefined) return inputs.map((input) => runEpisode(input));
    return Promise.all(
      inputs.map(async (input) => (await pool.run({ task: "rl/rollout-task", input })) as RolloutOutput),
    );
  }
  async close(): Promise<void> {
    await this.pool?.destroy();
  }
}

/** Trains (or continues training) and writes DIR/policy.json, the learning curve and checkpoints. */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const started = performance.now();
  const { loaded, outDir } = options;
  let rl: RlConfig = loaded.config.rl ?? rlSchema.parse({});
  let seed = options.seed ?? loaded.config.seed;
  let agents: PpoAgent[];
  let scalers: RewardScaler[];
  let iteration = 0;
  let steps = 0;
  let curve: CurveRow[] = [];
  let wallBefore = 0;
  let best: BestPolicy | null = null;
  if (options.resume !== undefined) {
    const { trainer } = readCheckpoint(options.resume);
    // The network shapes, reward and PPO settings are the checkpoint's; only the step budget is new.
    rl = { ...trainer.rl, train: { ...trainer.rl.train, steps: rl.train.steps } };
    seed = trainer.seed;
    agents = trainer.agents.map((state) => PpoAgent.fromJSON(state, rl.ppo));
    scalers = trainer.reward_scalers.map((state) => new RewardScaler(state));
    iteration = trainer.iteration;
    steps = trainer.steps;
    curve = [...trainer.curve];
    wallBefore = trainer.wall_s;
    best = trainer.best ?? null;
  } else {
    const settings = envSettings(loaded, rl);
    agents = settings.agents.map((layout) => PpoAgent.create(layout, rl.action, rl.ppo, seed));
    scalers = agents.map(() => new RewardScaler());
  }
  const settings = envSettings(loaded, rl);
  if (
    settings.agents.length !== agents.length ||
    settings.agents.some((a, i) => a.inputSize !== agents[i]!.inputSize)
  )
    throw new UsageError(
      "--resume: the checkpoint's agents do not fit this config's pools and features (train a new policy instead)",
    );
  const totalSteps = options.steps ?? rl.train.steps;
  const threads = options.threads ?? availableParallelism();
  const checkpointDir = join(outDir, "checkpoints");
  mkdirSync(checkpointDir, { recursive: true });
  // Relative to the package (presets/rl-azure-conv.yaml), so a committed policy names no home directory.
  const sourceName = loaded.source.startsWith(PACKAGE_ROOT)
    ? relative(PACKAGE_ROOT, loaded.source)
    : loaded.source;
  const provenance = (): Record<string, unknown> => ({
    config: sourceName,
    seed,
    iterations: iteration,
    steps,
    reward: rl.reward.variant,
  });
  const trainerState = (): TrainerState => ({
    iteration,
    steps,
    seed,
    rl,
    agents: agents.map((agent) => agent.toJSON()),
    reward_scalers: scalers.map((scaler) => scaler.stats.toJSON()),
    curve,
    wall_s: wallBefore + (performance.now() - started) / 1000,
    best,
  });
  const writeCheckpoint = (): void => {
    const text = `${JSON.stringify(policyFile(settings, rl, agents, provenance(), trainerState()))}\n`;
    writeFileSync(join(checkpointDir, `iter-${String(iteration).padStart(6, "0")}.json`), text);
    writeFileSync(join(checkpointDir, "latest.json"), text);
    // The curve so far, so a long run can be watched (and survives an interruption).
    writeFileSync(join(outDir, "learning_curve.csv"), curveCsv(curve));
  };

  const rollouts = new Rollouts(threads);
  /**
   * The deterministic policy on the whole workload with the config's seed: comparable across
   * iterations, and what `compare` will see.
   */
  const evaluate = async (): Promise<RolloutOutput> => {
    const [output] = await rollouts.run([
      {
        config: loaded.config,
        baseDir: loaded.baseDir,
        source: loaded.source,
        rl: { ...rl, episode: { ...rl.episode, mode: "whole" } },
        actors: agents.map((agent) => agent.snapshot()),
        episodeSeed: loaded.config.seed,
        sampleSeed: 0,
        deterministic: true,
      },
    ]);
    return output!;
  };
  const currentAsBest = (evaluation: RolloutOutput): BestPolicy => ({
    eval_reward: evaluation.summary.reward,
    summary: evaluation.summary,
    iteration,
    steps,
    agents: policyFile(settings, rl, agents, {}).agents,
  });
  let finalEval: RolloutOutput | undefined;
  try {
    while (steps < totalSteps) {
      const rolloutStart = performance.now();
      const actors = agents.map((agent) => agent.snapshot());
      const inputs: RolloutInput[] = Array.from({ length: rl.train.envs_per_iteration }, (_, e) => ({
        config: loaded.config,
        baseDir: loaded.baseDir,
        source: loaded.source,
        rl,
        actors,
        episodeSeed: derivedSeed(seed, `episode-${iteration}-${e}`),
        sampleSeed: derivedSeed(seed, `sample-${iteration}-${e}`),
      }));
      const episodes = await rollouts.run(inputs);
      const rollout_s = (performance.now() - rolloutStart) / 1000;

      const updateStart = performance.now();
      const stats: UpdateStats[] = agents.map((agent, a) => {
        const rows = episodes.reduce((sum, episode) => sum + episode.steps, 0);
        const scale = rl.ppo.normalize_reward
          ? scalers[a]!.absorb(
              episodes.map((episode) => episode.agents[a]!.rewards),
              rl.ppo.gamma,
            )
          : 1;
        const obs = new Float64Array(rows * agent.inputSize);
        const actions = new Float64Array(rows * agent.actionDim);
        const logp = new Float64Array(rows);
        const advantages = new Float64Array(rows);
        const returns = new Float64Array(rows);
        let offset = 0;
        for (const episode of episodes) {
          const trajectory = episode.agents[a]!;
          const values = agent.values(trajectory.obs, episode.steps);
          const rewards = Float64Array.from(trajectory.rewards, (reward) => reward * scale);
          const estimate = gae(rewards, values, rl.ppo.gamma, rl.ppo.gae_lambda, 0);
          obs.set(trajectory.obs, offset * agent.inputSize);
          actions.set(trajectory.actions, offset * agent.actionDim);
          logp.set(trajectory.logp, offset);
          advantages.set(estimate.advantages, offset);
          returns.set(estimate.returns, offset);
          offset += episode.steps;
        }
        return agent.update(
          { rows, obs, actions, logp, advantages, returns },
          new Rng(seed).fork(`update-${iteration}-${a}`),
        );
      });
      const stepsBefore = steps;
      steps += episodes.reduce((sum, episode) => sum + episode.steps, 0);
      for (const agent of agents) agent.decayActionStd(stepsBefore, steps);
      iteration++;
      let evaluation: RolloutOutput | undefined;
      // On a fixed schedule only, so a resumed run keeps the same best policy as an uninterrupted one.
      if (rl.train.eval_every > 0 && iteration % rl.train.eval_every === 0) {
        evaluation = await evaluate();
        if (best === null || evaluation.summary.reward > best.eval_reward) best = currentAsBest(evaluation);
      }
      const arrived = episodes.reduce((sum, episode) => sum + episode.summary.arrived, 0);
      const met = episodes.reduce((sum, episode) => sum + episode.summary.met, 0);
      const row: CurveRow = {
        iteration,
        steps,
        episodes: episodes.length,
        reward: mean(episodes.map((episode) => episode.summary.reward)),
        slo_attainment: arrived > 0 ? met / arrived : NaN,
        gpu_hours: mean(episodes.map((episode) => episode.summary.gpu_hours)),
        scale_events: mean(episodes.map((episode) => episode.summary.scale_events)),
        action_std: agents[0]!.actionStd,
        policy_loss: mean(stats.map((s) => s.policy_loss)),
        value_loss: mean(stats.map((s) => s.value_loss)),
        entropy: mean(stats.map((s) => s.entropy)),
        approx_kl: mean(stats.map((s) => s.approx_kl)),
        clip_fraction: mean(stats.map((s) => s.clip_fraction)),
        rollout_s,
        update_s: (performance.now() - updateStart) / 1000,
        wall_s: wallBefore + (performance.now() - started) / 1000,
        eval_reward: evaluation?.summary.reward ?? NaN,
        eval_slo_attainment: evaluation?.summary.slo_attainment ?? NaN,
        eval_gpu_hours: evaluation?.summary.gpu_hours ?? NaN,
      };
      curve.push(row);
      options.onIteration?.(row, totalSteps);
      if (iteration % rl.train.checkpoint_every === 0) writeCheckpoint();
    }
    // The final policy competes for policy.json too (without entering the checkpoint's best).
    const lastRow = curve[curve.length - 1];
    if (
      rl.train.keep === "best" &&
      rl.train.eval_every > 0 &&
      lastRow !== undefined &&
      !Number.isFinite(lastRow.eval_reward)
    )
      finalEval = await evaluate();
  } finally {
    await rollouts.close();
  }
  writeCheckpoint();
  const policyPath = join(outDir, "policy.json");
  const last = policyFile(settings, rl, agents, provenance());
  const lastPath = join(outDir, "policy-last.json");
  writeFileSync(lastPath, `${JSON.stringify(last)}\n`);
  let chosen = best;
  if (finalEval !== undefined && (chosen === null || finalEval.summary.reward > chosen.eval_reward))
    chosen = currentAsBest(finalEval);
  const keepBest = rl.train.keep === "best" && chosen !== null;
  const kept: RlPolicyFile = keepBest
    ? {
        ...last,
        agents: chosen!.agents,
        provenance: {
          ...provenance(),
          iterations: chosen!.iteration,
          steps: chosen!.steps,
          eval_reward: chosen!.eval_reward,
        },
      }
    : last;
  writeFileSync(policyPath, `${JSON.stringify(kept)}\n`);
  writeFileSync(join(outDir, "learning_curve.csv"), curveCsv(curve));
  const files = [policyPath, lastPath, join(outDir, "learning_curve.csv")];
  if (options.charts !== false && curve.length > 0) {
    const svg = await renderSvg(learningCurveSpec(curve, `PPO learning curve: ${loaded.source}`));
    writeFileSync(join(outDir, "learning_curve.svg"), svg);
    writeFileSync(join(outDir, "learning_curve.png"), svgToPng(svg));
    files.push(join(outDir, "learning_curve.svg"), join(outDir, "learning_curve.png"));
  }
  files.push(join(checkpointDir, "latest.json"));
  return {
    policyPath,
    policyIteration: keepBest ? chosen!.iteration : iteration,
    iterations: iteration,
    steps,
    wall_s: wallBefore + (performance.now() - started) / 1000,
    curve,
    files,
    ...(chosen === null ? {} : { evaluation: chosen.summary }),
  };
}
