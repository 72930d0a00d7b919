import { z } from "zod";

/**
 * `rl:` in a simulation config: how `splitscale train` builds the environment, shapes the reward and
 * runs PPO. Absent = every default. The rest of the config (fleet, scheduler, `autoscaling` pools,
 * startup delay, max_total_instances) is the environment the policy is trained in.
 */

const positive = z.number().positive();
const fraction = z.number().min(0).max(1);
const weight = z.number().nonnegative();

export const rlFeaturesSchema = z.strictObject({
  /** Frames stacked (the last k decisions), oldest first. */
  stack: z.int().min(1).max(32).default(4),
  /** Replica counts are divided by this (a scale, not a limit). */
  count_scale: positive.default(16),
  /** Arrivals per second that map to a feature value of 1 (log scale). */
  rate_scale: positive.default(20),
  /** A first token slower than this (seconds) counts against the recent-SLO feature. */
  ttft_slow_s: positive.default(1),
});

const scaleRange = z
  .tuple([positive, positive])
  .refine(([low, high]) => low <= high, { message: "expected [low, high] with low <= high" });

export const rlEpisodeSchema = z.strictObject({
  /** `window`: a random slice of the workload per episode; `whole`: the whole workload every time. */
  mode: z.enum(["window", "whole"]).default("window"),
  /** Length of a window in seconds of arrivals. */
  length_s: positive.default(900),
  /** After the last arrival the episode goes on until every request finished, at most this long. */
  max_drain_s: z.number().nonnegative().default(300),
  /**
   * Domain randomization of `window` episodes, [low, high] drawn uniformly per episode: arrivals
   * replayed this many times faster (a window of length_s · m of the workload squeezed into
   * length_s), and prompt lengths multiplied (capped at the workload's longest prompt). [1, 1]: as is.
   */
  rate_scale: scaleRange.default([1, 1]),
  prompt_scale: scaleRange.default([1, 1]),
});

export const rlRewardSchema = z.strictObject({
  /**
   * `splitscale`: GPU cost + SLO misses of the interval's completions + switching + overload;
   * `drl-rule` and `origin-slo`: the two upstream reward functions of spec §5.4 (see docs/rl.md).
   */
  variant: z.enum(["splitscale", "drl-rule", "origin-slo"]).default("splitscale"),
  /** Weights; unset ones take the variant's defaults (docs/rl.md lists them). */
  w_cost: weight.optional(),
  w_slo: weight.optional(),
  w_switch: weight.optional(),
  w_util: weight.optional(),
  w_queue: weight.optional(),
  w_congestion: weight.optional(),
  /** `gpu_hours`: GPU time paid in the interval (starting and draining included); `instances`: replicas. */
  cost_unit: z.enum(["gpu_hours", "instances"]).default("gpu_hours"),
  /** GPUs per cost unit when `cost_unit: gpu_hours` (8: one DGX replica-hour per hour costs 1). */
  gpus_per_cost_unit: positive.default(8),
  /** Utilization above this is penalized by `w_util` (splitscale variant). */
  util_target: fraction.default(0.8),
  /** origin-slo: score an interval without completions as fully compliant (upstream defect #30). */
  upstream_empty_window: z.boolean().default(false),
});

export const ppoSchema = z.strictObject({
  /** Hidden layer widths of the actor and the critic (tanh). */
  hidden: z.array(z.int().positive()).min(1).max(4).default([64, 64]),
  lr_actor: positive.default(3e-4),
  lr_critic: positive.default(1e-3),
  gamma: fraction.default(0.99),
  gae_lambda: fraction.default(0.95),
  clip: positive.default(0.2),
  epochs: z.int().positive().default(10),
  minibatch: z.int().positive().default(256),
  entropy_coef: weight.default(0.01),
  value_coef: weight.default(0.5),
  max_grad_norm: positive.default(0.5),
  /** Stop an update's epochs early when the approximate KL exceeds 1.5 × this (null: never). */
  target_kl: positive.nullable().default(0.03),
  /** Gaussian action std (continuous actions): start, decrement, floor, and decrement period in steps. */
  action_std_init: positive.default(0.6),
  action_std_decay: z.number().nonnegative().default(0.05),
  action_std_min: positive.default(0.1),
  action_std_decay_every_steps: z.int().positive().default(100_000),
  normalize_obs: z.boolean().default(true),
  normalize_reward: z.boolean().default(true),
  clip_obs: positive.default(5),
});

export const rlTrainSchema = z.strictObject({
  /** Decision steps to train for (all environments together); `--steps` overrides. */
  steps: z.int().positive().default(500_000),
  /** Episodes collected per PPO iteration (run in parallel on the worker threads). */
  envs_per_iteration: z.int().positive().default(8),
  /** Write a checkpoint every this many iterations (and always at the end). */
  checkpoint_every: z.int().positive().default(10),
  /**
   * Every this many iterations, run the deterministic policy on the whole workload (0: never); the
   * learning curve shows it next to the sampled episodes.
   */
  eval_every: z.int().nonnegative().default(10),
  /** `best`: DIR/policy.json is the policy with the best evaluation reward; `last`: the final one. */
  keep: z.enum(["best", "last"]).default("best"),
});

export const rlSchema = z.strictObject({
  /** One agent for every pool, or one per pool (the fork's prompt and token agents). */
  agents: z.enum(["joint", "split"]).default("joint"),
  /** `continuous`: a value per pool × action_scale_step; `discrete`: -1, 0 or +1 instance per pool. */
  action: z.enum(["continuous", "discrete"]).default("continuous"),
  /** Instances that a continuous action of 1.0 adds (the fork's action_scale_step). */
  action_scale_step: z.int().positive().default(2),
  /** Seconds between decisions; default: autoscaling.decision_interval_s, else 2. */
  decision_interval_s: positive.optional(),
  features: rlFeaturesSchema.prefault({}),
  episode: rlEpisodeSchema.prefault({}),
  reward: rlRewardSchema.prefault({}),
  ppo: ppoSchema.prefault({}),
  train: rlTrainSchema.prefault({}),
});

export type RlConfig = z.output<typeof rlSchema>;
export type RlRewardConfig = z.output<typeof rlRewardSchema>;
export type PpoSettings = z.output<typeof ppoSchema>;
export type RlFeaturesConfig = z.output<typeof rlFeaturesSchema>;
