import type { Rng } from "../core/rng.ts";
import { DISCRETE_CHOICES, type ActionKind } from "./actions.ts";
import { Mlp } from "./mlp.ts";

/**
 * The acting half of a PPO agent: observation normalizer, policy network and action distribution.
 * Rollout workers and the deployed `rl` policy build one from a snapshot; only the trainer owns the
 * critic and the optimizer.
 */

/** Running mean and variance (Chan et al.'s parallel update), per input. */
export interface NormalizerState {
  readonly mean: readonly number[];
  readonly var: readonly number[];
  readonly count: number;
}

export class RunningMeanStd {
  readonly mean: Float64Array;
  readonly var: Float64Array;
  count: number;

  constructor(size: number, state?: NormalizerState) {
    this.mean = new Float64Array(size);
    this.var = new Float64Array(size).fill(1);
    this.count = 1e-4;
    if (state !== undefined) {
      if (state.mean.length !== size || state.var.length !== size)
        throw new RangeError(`normalizer: expected ${size} inputs, the state has ${state.mean.length}`);
      this.mean.set(state.mean);
      this.var.set(state.var);
      this.count = state.count;
    }
  }

  /** Merges `rows` rows of `data` (row-major, `mean.length` wide). */
  update(data: Float64Array, rows: number): void {
    if (rows === 0) return;
    const size = this.mean.length;
    const batchMean = new Float64Array(size);
    const batchVar = new Float64Array(size);
    for (let r = 0; r < rows; r++) for (let i = 0; i < size; i++) batchMean[i]! += data[r * size + i]!;
    for (let i = 0; i < size; i++) batchMean[i]! /= rows;
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < size; i++) {
        const d = data[r * size + i]! - batchMean[i]!;
        batchVar[i]! += d * d;
      }
    const total = this.count + rows;
    for (let i = 0; i < size; i++) {
      const delta = batchMean[i]! - this.mean[i]!;
      const m2 = this.var[i]! * this.count + batchVar[i]! + (delta * delta * this.count * rows) / total;
      this.mean[i] = this.mean[i]! + (delta * rows) / total;
      this.var[i] = m2 / total;
    }
    this.count = total;
  }

  toJSON(): NormalizerState {
    return { mean: Array.from(this.mean), var: Array.from(this.var), count: this.count };
  }
}

/** Everything needed to act (plain JSON when serialized). */
export interface ActorSnapshot {
  readonly kind: ActionKind;
  /** Action values per step (pools this agent controls). */
  readonly action_dim: number;
  readonly sizes: readonly number[];
  readonly params: readonly number[] | Float64Array;
  /** Standard deviation of the Gaussian (continuous actions). */
  readonly action_std: number;
  /** Observation normalizer (null: inputs are used as they are). */
  readonly obs_norm: NormalizerState | null;
  /** Normalized inputs are clipped to ±this. */
  readonly clip_obs: number;
}

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Log-density and, optionally, its gradient w.r.t. the network output, for one sample. */
export function gaussianLogProb(
  output: ArrayLike<number>,
  action: ArrayLike<number>,
  std: number,
  gradOut?: Float64Array,
): number {
  let logp = 0;
  const variance = std * std;
  for (let j = 0; j < action.length; j++) {
    const mean = Math.tanh(output[j]!);
    const diff = action[j]! - mean;
    logp += (-0.5 * diff * diff) / variance - Math.log(std) - LOG_SQRT_2PI;
    // The mean is tanh(output): chain rule through 1 - tanh^2.
    if (gradOut !== undefined) gradOut[j] = (diff / variance) * (1 - mean * mean);
  }
  return logp;
}

/**
 * Log-probability of the chosen indices under per-pool softmaxes over `DISCRETE_CHOICES` logits,
 * plus the entropy; optional gradients of both w.r.t. the logits.
 */
export function categoricalLogProb(
  logits: ArrayLike<number>,
  choices: ArrayLike<number>,
  gradLogp?: Float64Array,
  gradEntropy?: Float64Array,
): { logp: number; entropy: number } {
  let logp = 0;
  let entropy = 0;
  const probs = new Float64Array(DISCRETE_CHOICES);
  for (let j = 0; j < choices.length; j++) {
    const base = j * DISCRETE_CHOICES;
    let max = -Infinity;
    for (let k = 0; k < DISCRETE_CHOICES; k++) max = Math.max(max, logits[base + k]!);
    let sum = 0;
    for (let k = 0; k < DISCRETE_CHOICES; k++) sum += probs[k] = Math.exp(logits[base + k]! - max);
    const logSum = Math.log(sum) + max;
    let h = 0;
    for (let k = 0; k < DISCRETE_CHOICES; k++) {
      probs[k]! /= sum;
      if (probs[k]! > 0) h -= probs[k]! * (logits[base + k]! - logSum);
    }
    const choice = choices[j]!;
    logp += logits[base + choice]! - logSum;
    entropy += h;
    for (let k = 0; k < DISCRETE_CHOICES; k++) {
      const p = probs[k]!;
      if (gradLogp !== undefined) gradLogp[base + k] = (k === choice ? 1 : 0) - p;
      // dH/dz_k = -p_k (log p_k + H)
      if (gradEntropy !== undefined) gradEntropy[base + k] = -p * (logits[base + k]! - logSum + h);
    }
  }
  return { logp, entropy };
}

export class Actor {
  readonly net: Mlp;
  readonly kind: ActionKind;
  readonly actionDim: number;
  readonly std: number;
  private readonly mean: Float64Array | undefined;
  private readonly invStd: Float64Array | undefined;
  private readonly clipObs: number;
  private readonly normalized: Float64Array;

  constructor(snapshot: ActorSnapshot) {
    this.net = new Mlp(snapshot.sizes, snapshot.params);
    this.kind = snapshot.kind;
    this.actionDim = snapshot.action_dim;
    this.std = snapshot.action_std;
    this.clipObs = snapshot.clip_obs;
    const expected = this.kind === "continuous" ? this.actionDim : this.actionDim * DISCRETE_CHOICES;
    if (this.net.outputSize !== expected)
      throw new RangeError(
        `actor: ${this.kind} actions over ${this.actionDim} pools need ${expected} outputs`,
      );
    if (snapshot.obs_norm !== null) {
      this.mean = Float64Array.from(snapshot.obs_norm.mean);
      this.invStd = Float64Array.from(snapshot.obs_norm.var, (v) => 1 / Math.sqrt(v + 1e-8));
    }
    this.normalized = new Float64Array(this.net.inputSize);
  }

  get inputSize(): number {
    return this.net.inputSize;
  }

  /** The normalized, clipped input (a scratch buffer, valid until the next call). */
  normalize(observation: ArrayLike<number>): Float64Array {
    const out = this.normalized;
    if (observation.length !== out.length)
      throw new RangeError(`actor: expected ${out.length} inputs, got ${observation.length}`);
    for (let i = 0; i < out.length; i++) {
      const value =
        this.mean === undefined ? observation[i]! : (observation[i]! - this.mean[i]!) * this.invStd![i]!;
      out[i] = Math.max(-this.clipObs, Math.min(this.clipObs, value));
    }
    return out;
  }

  /**
   * The deterministic action: the Gaussian's mean, or each pool's most likely choice. Ties between
   * logits go to the lower index, so "remove" never wins a tie against "hold" by accident of order.
   */
  deterministic(observation: ArrayLike<number>): number[] {
    const output = this.net.forward(this.normalize(observation));
    const action: number[] = [];
    for (let j = 0; j < this.actionDim; j++) {
      if (this.kind === "continuous") {
        action.push(Math.tanh(output[j]!));
        continue;
      }
      let best = 0;
      for (let k = 1; k < DISCRETE_CHOICES; k++)
        if (output[j * DISCRETE_CHOICES + k]! > output[j * DISCRETE_CHOICES + best]!) best = k;
      action.push(best);
    }
    return action;
  }

  /** A sampled action and its log-probability (the rollout's behaviour policy). */
  sample(observation: ArrayLike<number>, rng: Rng): { action: number[]; logp: number } {
    const output = this.net.forward(this.normalize(observation));
    const action: number[] = [];
    if (this.kind === "continuous") {
      for (let j = 0; j < this.actionDim; j++) action.push(Math.tanh(output[j]!) + this.std * rng.normal());
      return { action, logp: gaussianLogProb(output, action, this.std) };
    }
    for (let j = 0; j < this.actionDim; j++) {
      const base = j * DISCRETE_CHOICES;
      let max = -Infinity;
      for (let k = 0; k < DISCRETE_CHOICES; k++) max = Math.max(max, output[base + k]!);
      let sum = 0;
      for (let k = 0; k < DISCRETE_CHOICES; k++) sum += Math.exp(output[base + k]! - max);
      let u = rng.nextFloat() * sum;
      let choice = DISCRETE_CHOICES - 1;
      for (let k = 0; k < DISCRETE_CHOICES; k++) {
        u -= Math.exp(output[base + k]! - max);
        if (u < 0) {
          choice = k;
          break;
        }
      }
      action.push(choice);
    }
    return { action, logp: categoricalLogProb(output, action).logp };
  }
}
