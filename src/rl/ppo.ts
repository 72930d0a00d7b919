import type { PpoSettings } from "../config/rl-schema.ts";
import { Rng } from "../core/rng.ts";
import { DISCRETE_CHOICES, type ActionKind } from "./actions.ts";
import {
  categoricalLogProb,
  gaussianLogProb,
  RunningMeanStd,
  type ActorSnapshot,
  type NormalizerState,
} from "./actor.ts";
import { Adam, clipGradNorm, Mlp, type AdamState } from "./mlp.ts";

/**
 * Proximal policy optimization (clipped surrogate, GAE(λ) advantages, value loss, entropy bonus,
 * minibatch epochs) for the small networks of mlp.ts. Continuous actions use a Gaussian whose mean
 * is tanh(actor output) and whose std follows a decay schedule (the fork's `action_std`); discrete
 * actions a softmax per pool. Every random draw comes from a seeded Rng, so training is a function of
 * (config, seed), and an agent serializes to plain JSON (weights, Adam moments, normalizer, counters)
 * from which training resumes exactly.
 */

export interface AgentLayout {
  /** `joint`, or the pool a split agent controls. */
  readonly name: string;
  /** Indices of the pools this agent sees and acts on (FeatureSpec.pools order). */
  readonly pools: readonly number[];
  readonly inputSize: number;
}

/** One agent's transitions of an iteration (rows in episode order). */
export interface Batch {
  readonly rows: number;
  readonly obs: Float64Array;
  readonly actions: Float64Array;
  readonly logp: Float64Array;
  readonly advantages: Float64Array;
  readonly returns: Float64Array;
}

export interface UpdateStats {
  readonly policy_loss: number;
  readonly value_loss: number;
  readonly entropy: number;
  readonly approx_kl: number;
  readonly clip_fraction: number;
  readonly epochs: number;
}

export interface AgentState {
  readonly name: string;
  readonly pools: readonly number[];
  readonly kind: ActionKind;
  readonly actor: { readonly sizes: readonly number[]; readonly params: readonly number[] };
  readonly critic: { readonly sizes: readonly number[]; readonly params: readonly number[] };
  readonly actor_adam: AdamState;
  readonly critic_adam: AdamState;
  readonly obs_norm: NormalizerState | null;
  readonly action_std: number;
  readonly updates: number;
}

/**
 * Generalized advantage estimation over one episode: δ_t = r_t + γ V_{t+1} − V_t,
 * A_t = δ_t + γλ A_{t+1}; V after the last step is `bootstrap` (0 for a terminal state).
 * Returns (the value targets) are A_t + V_t.
 */
export function gae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  gamma: number,
  lambda: number,
  bootstrap = 0,
): { advantages: Float64Array; returns: Float64Array } {
  const steps = rewards.length;
  const advantages = new Float64Array(steps);
  const returns = new Float64Array(steps);
  let next = 0;
  for (let t = steps - 1; t >= 0; t--) {
    const nextValue = t === steps - 1 ? bootstrap : values[t + 1]!;
    const delta = rewards[t]! + gamma * nextValue - values[t]!;
    next = delta + gamma * lambda * next;
    advantages[t] = next;
    returns[t] = next + values[t]!;
  }
  return { advantages, returns };
}

function outputSize(kind: ActionKind, actionDim: number): number {
  return kind === "continuous" ? actionDim : actionDim * DISCRETE_CHOICES;
}

export class PpoAgent {
  readonly name: string;
  readonly pools: readonly number[];
  readonly kind: ActionKind;
  readonly actor: Mlp;
  readonly critic: Mlp;
  readonly actorAdam: Adam;
  readonly criticAdam: Adam;
  readonly obsNorm: RunningMeanStd | null;
  actionStd: number;
  updates: number;

  private constructor(
    readonly settings: PpoSettings,
    state: {
      name: string;
      pools: readonly number[];
      kind: ActionKind;
      actor: Mlp;
      critic: Mlp;
      actorAdam: Adam;
      criticAdam: Adam;
      obsNorm: RunningMeanStd | null;
      actionStd: number;
      updates: number;
    },
  ) {
    this.name = state.name;
    this.pools = state.pools;
    this.kind = state.kind;
    this.actor = state.actor;
    this.critic = state.critic;
    this.actorAdam = state.actorAdam;
    this.criticAdam = state.criticAdam;
    this.obsNorm = state.obsNorm;
    this.actionStd = state.actionStd;
    this.updates = state.updates;
  }

  /** A fresh agent; the weights are drawn from `seed` and the agent's name. */
  static create(layout: AgentLayout, kind: ActionKind, settings: PpoSettings, seed: number): PpoAgent {
    const rng = new Rng(seed).fork(`ppo-init-${layout.name}`);
    const actionDim = layout.pools.length;
    // A small output layer: initial actions sit near 0 (hold), the critic near 0.
    const actor = new Mlp([layout.inputSize, ...settings.hidden, outputSize(kind, actionDim)]).initialize(
      rng.fork("actor"),
      0.01,
    );
    const critic = new Mlp([layout.inputSize, ...settings.hidden, 1]).initialize(rng.fork("critic"), 1);
    return new PpoAgent(settings, {
      name: layout.name,
      pools: [...layout.pools],
      kind,
      actor,
      critic,
      actorAdam: new Adam(actor.params.length, settings.lr_actor),
      criticAdam: new Adam(critic.params.length, settings.lr_critic),
      obsNorm: settings.normalize_obs ? new RunningMeanStd(layout.inputSize) : null,
      actionStd: settings.action_std_init,
      updates: 0,
    });
  }

  static fromJSON(state: AgentState, settings: PpoSettings): PpoAgent {
    const actor = new Mlp(state.actor.sizes, state.actor.params);
    const critic = new Mlp(state.critic.sizes, state.critic.params);
    return new PpoAgent(settings, {
      name: state.name,
      pools: [...state.pools],
      kind: state.kind,
      actor,
      critic,
      actorAdam: Adam.fromJSON(state.actor_adam, actor.params.length),
      criticAdam: Adam.fromJSON(state.critic_adam, critic.params.length),
      obsNorm: state.obs_norm === null ? null : new RunningMeanStd(actor.inputSize, state.obs_norm),
      actionStd: state.action_std,
      updates: state.updates,
    });
  }

  toJSON(): AgentState {
    return {
      name: this.name,
      pools: [...this.pools],
      kind: this.kind,
      actor: { sizes: [...this.actor.sizes], params: Array.from(this.actor.params) },
      critic: { sizes: [...this.critic.sizes], params: Array.from(this.critic.params) },
      actor_adam: this.actorAdam.toJSON(),
      critic_adam: this.criticAdam.toJSON(),
      obs_norm: this.obsNorm === null ? null : this.obsNorm.toJSON(),
      action_std: this.actionStd,
      updates: this.updates,
    };
  }

  get inputSize(): number {
    return this.actor.inputSize;
  }

  get actionDim(): number {
    return this.pools.length;
  }

  /** What rollout workers and the deployed policy need to act. */
  snapshot(): ActorSnapshot {
    return {
      kind: this.kind,
      action_dim: this.actionDim,
      sizes: [...this.actor.sizes],
      params: Float64Array.from(this.actor.params),
      action_std: this.actionStd,
      obs_norm: this.obsNorm === null ? null : this.obsNorm.toJSON(),
      clip_obs: this.settings.clip_obs,
    };
  }

  /** Inputs normalized with the current statistics (what the networks see), row-major. */
  normalizeRows(obs: Float64Array, rows: number): Float64Array {
    const size = this.inputSize;
    const out = new Float64Array(rows * size);
    const clip = this.settings.clip_obs;
    const norm = this.obsNorm;
    for (let i = 0; i < size; i++) {
      const mean = norm === null ? 0 : norm.mean[i]!;
      const inv = norm === null ? 1 : 1 / Math.sqrt(norm.var[i]! + 1e-8);
      for (let r = 0; r < rows; r++) {
        const value = (obs[r * size + i]! - mean) * inv;
        out[r * size + i] = Math.max(-clip, Math.min(clip, value));
      }
    }
    return out;
  }

  /** Critic values of raw observations. */
  values(obs: Float64Array, rows: number): Float64Array {
    const normalized = this.normalizeRows(obs, rows);
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) out[r] = this.critic.forward(normalized, r * this.inputSize)[0]!;
    return out;
  }

  /**
   * One PPO update over `batch` (observations normalized with the statistics the rollouts used),
   * then the normalizer absorbs the batch. `rng` shuffles the minibatches.
   */
  update(batch: Batch, rng: Rng): UpdateStats {
    const s = this.settings;
    const rows = batch.rows;
    const size = this.inputSize;
    const actionDim = this.actionDim;
    const obs = this.normalizeRows(batch.obs, rows);
    // Advantages normalized over the batch (scale-free step sizes whatever the reward scale).
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += batch.advantages[r]!;
    mean /= Math.max(rows, 1);
    let variance = 0;
    for (let r = 0; r < rows; r++) variance += (batch.advantages[r]! - mean) ** 2;
    const std = Math.sqrt(variance / Math.max(rows, 1)) + 1e-8;
    const advantages = Float64Array.from(batch.advantages, (a) => (a - mean) / std);

    const actorGrad = new Float64Array(this.actor.params.length);
    const criticGrad = new Float64Array(this.critic.params.length);
    const outSize = this.actor.outputSize;
    const gradLogp = new Float64Array(outSize);
    const gradEntropy = new Float64Array(outSize);
    const gradOut = new Float64Array(outSize);
    const action = new Float64Array(actionDim);
    const valueGrad = new Float64Array(1);
    const order = Array.from({ length: rows }, (_, i) => i);
    const minibatch = Math.max(1, Math.min(s.minibatch, rows));

    let policyLoss = 0;
    let valueLoss = 0;
    let entropySum = 0;
    let klSum = 0;
    let clipped = 0;
    let counted = 0;
    let epochsRun = 0;
    for (let epoch = 0; epoch < s.epochs; epoch++) {
      // Fisher-Yates with the seeded stream.
      for (let i = rows - 1; i > 0; i--) {
        const j = rng.nextInt(i + 1);
        const tmp = order[i]!;
        order[i] = order[j]!;
        order[j] = tmp;
      }
      policyLoss = valueLoss = entropySum = klSum = clipped = 0;
      counted = 0;
      for (let start = 0; start < rows; start += minibatch) {
        const end = Math.min(rows, start + minibatch);
        const scale = 1 / (end - start);
        actorGrad.fill(0);
        criticGrad.fill(0);
        for (let k = start; k < end; k++) {
          const r = order[k]!;
          const out = this.actor.forward(obs, r * size);
          for (let j = 0; j < actionDim; j++) action[j] = batch.actions[r * actionDim + j]!;
          let logp: number;
          let entropy: number;
          if (this.kind === "continuous") {
            logp = gaussianLogProb(out, action, this.actionStd, gradLogp);
            // Fixed std: the entropy is a constant and has no gradient.
            entropy = actionDim * (0.5 + 0.5 * Math.log(2 * Math.PI) + Math.log(this.actionStd));
            gradEntropy.fill(0);
          } else {
            ({ logp, entropy } = categoricalLogProb(out, action, gradLogp, gradEntropy));
          }
          const logRatio = logp - batch.logp[r]!;
          const ratio = Math.exp(logRatio);
          const advantage = advantages[r]!;
          const unclipped = ratio * advantage;
          const clippedValue = Math.max(1 - s.clip, Math.min(1 + s.clip, ratio)) * advantage;
          const active = unclipped <= clippedValue; // min() picks the unclipped term: it has a gradient
          if (!active) clipped++;
          policyLoss -= Math.min(unclipped, clippedValue);
          entropySum += entropy;
          klSum += ratio - 1 - logRatio; // unbiased, non-negative KL estimate
          counted++;
          // d(-min(...))/dlogp = -ratio·A on the unclipped branch; minus the entropy bonus.
          const coefficient = active ? -unclipped : 0;
          for (let o = 0; o < outSize; o++)
            gradOut[o] = scale * (coefficient * gradLogp[o]! - s.entropy_coef * gradEntropy[o]!);
          this.actor.backward(gradOut, actorGrad);

          const value = this.critic.forward(obs, r * size)[0]!;
          const error = value - batch.returns[r]!;
          valueLoss += error * error;
          valueGrad[0] = scale * 2 * s.value_coef * error;
          this.critic.backward(valueGrad, criticGrad);
        }
        clipGradNorm(actorGrad, s.max_grad_norm);
        clipGradNorm(criticGrad, s.max_grad_norm);
        this.actorAdam.apply(this.actor.params, actorGrad);
        this.criticAdam.apply(this.critic.params, criticGrad);
      }
      epochsRun++;
      if (s.target_kl !== null && klSum / Math.max(counted, 1) > 1.5 * s.target_kl) break;
    }
    this.updates++;
    this.obsNorm?.update(batch.obs, rows);
    const n = Math.max(counted, 1);
    return {
      policy_loss: policyLoss / n,
      value_loss: valueLoss / n,
      entropy: entropySum / n,
      approx_kl: klSum / n,
      clip_fraction: clipped / n,
      epochs: epochsRun,
    };
  }

  /** The fork's schedule: the std drops by `action_std_decay` per period, down to its floor. */
  decayActionStd(stepsBefore: number, stepsAfter: number): void {
    const period = this.settings.action_std_decay_every_steps;
    const crossings = Math.floor(stepsAfter / period) - Math.floor(stepsBefore / period);
    for (let i = 0; i < crossings; i++)
      this.actionStd = Math.max(
        this.settings.action_std_min,
        this.actionStd - this.settings.action_std_decay,
      );
    // Rounded so repeated subtraction does not drift (0.6 - 0.05·k prints as 0.35000000000000003).
    this.actionStd = Math.round(this.actionStd * 1e9) / 1e9;
  }
}

/** Running standard deviation of discounted returns, to scale rewards to about unit size. */
export class RewardScaler {
  readonly stats: RunningMeanStd;
  constructor(state?: NormalizerState) {
    this.stats = new RunningMeanStd(1, state);
  }

  /**
   * Updates with each episode's running discounted returns (in order), then returns the scale
   * (1 / std) to multiply this iteration's rewards by.
   */
  absorb(episodes: readonly ArrayLike<number>[], gamma: number): number {
    let total = 0;
    for (const rewards of episodes) total += rewards.length;
    const returns = new Float64Array(total);
    let k = 0;
    for (const rewards of episodes) {
      let running = 0;
      for (let t = 0; t < rewards.length; t++) returns[k++] = running = running * gamma + rewards[t]!;
    }
    this.stats.update(returns, total);
    return 1 / Math.sqrt(this.stats.var[0]! + 1e-8);
  }

  get scale(): number {
    return 1 / Math.sqrt(this.stats.var[0]! + 1e-8);
  }
}
