import type { LoadedConfig, SimulationConfig } from "../config/config.ts";
import type { RlConfig } from "../config/rl-schema.ts";
import { Rng } from "../core/rng.ts";
import { Actor, type ActorSnapshot } from "./actor.ts";
import { ScalingEnv, type EpisodeSummary } from "./env.ts";

/**
 * One episode with given actors: what a rollout worker thread runs (`{ task: "rl/rollout-task" }`)
 * and what training runs inline with `--threads 0`. An episode depends only on its input (config,
 * actor weights, seeds), never on which thread runs it, so parallel training is reproducible.
 */

export interface RolloutInput {
  readonly config: SimulationConfig;
  readonly baseDir: string;
  readonly source: string;
  readonly rl: RlConfig;
  /** One per agent, in the environment's agent order. */
  readonly actors: readonly ActorSnapshot[];
  /** Seeds the episode (scheduler, startup delays, window offset). */
  readonly episodeSeed: number;
  /** Seeds the action sampling. */
  readonly sampleSeed: number;
  /** Act with the mean action instead of sampling (evaluation). */
  readonly deterministic?: boolean;
}

export interface AgentTrajectory {
  readonly obs: Float64Array;
  readonly actions: Float64Array;
  readonly logp: Float64Array;
  readonly rewards: Float64Array;
}

export interface RolloutOutput {
  readonly steps: number;
  readonly agents: readonly AgentTrajectory[];
  readonly summary: EpisodeSummary;
  readonly truncated: boolean;
  readonly wall_s: number;
}

/** Growable float rows without per-step allocation of small arrays. */
class Rows {
  private data: Float64Array;
  length = 0;
  constructor(private readonly width: number) {
    this.data = new Float64Array(Math.max(1, width) * 512);
  }
  push(values: ArrayLike<number>): void {
    const needed = (this.length + 1) * this.width;
    if (needed > this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    const base = this.length * this.width;
    for (let i = 0; i < this.width; i++) this.data[base + i] = values[i]!;
    this.length++;
  }
  finish(): Float64Array {
    return this.data.slice(0, this.length * this.width);
  }
}

export function runEpisode(input: RolloutInput, env?: ScalingEnv): RolloutOutput {
  const started = performance.now();
  const loaded: LoadedConfig = { config: input.config, baseDir: input.baseDir, source: input.source };
  const environment = env ?? new ScalingEnv(loaded, input.rl);
  const layouts = environment.settings.agents;
  if (layouts.length !== input.actors.length)
    throw new RangeError(`rollout: ${layouts.length} agents, ${input.actors.length} actor snapshots`);
  const actors = input.actors.map((snapshot) => new Actor(snapshot));
  const rng = new Rng(input.sampleSeed).fork("actions");
  const poolCount = environment.pools.length;
  const recorders = layouts.map((layout) => ({
    obs: new Rows(layout.inputSize),
    actions: new Rows(layout.pools.length),
    logp: new Rows(1),
    rewards: new Rows(1),
  }));
  environment.reset(input.episodeSeed);
  let observations = environment.agentObservations();
  const action = new Float64Array(poolCount);
  const logp = [0];
  let steps = 0;
  let truncated = false;
  while (!environment.done) {
    for (let a = 0; a < layouts.length; a++) {
      const layout = layouts[a]!;
      const actor = actors[a]!;
      const obs = observations[a]!;
      let chosen: number[];
      if (input.deterministic === true) {
        chosen = actor.deterministic(obs);
        logp[0] = 0;
      } else {
        const sampled = actor.sample(obs, rng);
        chosen = sampled.action;
        logp[0] = sampled.logp;
      }
      layout.pools.forEach((pool, index) => (action[pool] = chosen[index]!));
      const recorder = recorders[a]!;
      recorder.obs.push(obs);
      recorder.actions.push(chosen);
      recorder.logp.push(logp);
    }
    const result = environment.step(action);
    result.rewards.forEach((reward, a) => recorders[a]!.rewards.push([reward]));
    observations = result.observations as Float64Array[];
    truncated = result.truncated;
    steps++;
  }
  return {
    steps,
    agents: recorders.map((recorder) => ({
      obs: recorder.obs.finish(),
      actions: recorder.actions.finish(),
      logp: recorder.logp.finish(),
      rewards: recorder.rewards.finish(),
    })),
    summary: environment.summary(),
    truncated,
    wall_s: (performance.now() - started) / 1000,
  };
}
