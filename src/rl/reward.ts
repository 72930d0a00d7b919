import type { RlRewardConfig } from "../config/rl-schema.ts";
import type { PoolRole } from "../policy/types.ts";

/**
 * Rewards for one decision interval (training only: they may use what the simulator knows, the
 * policy never sees them). Three variants, formulas in docs/rl.md:
 *
 * - `splitscale` (default): r = −(w_cost·cost + w_slo·miss + w_switch·switches + w_util·overload
 *   + w_queue·queue), where cost is the GPU time paid in the interval (in replica units) and miss the
 *   share of the interval's completions that missed their per-request SLO;
 * - `drl-rule`: the DRL-rule fork's `calculate_reward` (instances, blocked tokens, prefill
 *   congestion, decode memory), with its division by zero fixed;
 * - `origin-slo`: originDRL's SLO score over the interval's TTFT/TBT slowdown percentiles minus
 *   instances, with its "an empty window is fully compliant" defect behind `upstream_empty_window`.
 */

export interface PoolInterval {
  readonly name: string;
  readonly role: PoolRole;
  readonly starting: number;
  readonly active: number;
  readonly draining: number;
  /** Mean GPU busy fraction of the pool's ACTIVE instances over the interval (0..1). */
  readonly busy_fraction: number;
  /** Mean KV-cache use of the ACTIVE instances at the end of the interval (0..1). */
  readonly kv_usage: number;
  /** Prompt tokens queued or in prefill on the ACTIVE instances at the end of the interval. */
  readonly pending_prefill_tokens: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/** What happened in one decision interval (the environment's `info`). */
export interface IntervalInfo {
  readonly time_s: number;
  readonly interval_s: number;
  readonly arrivals: number;
  readonly arrived_prompt_tokens: number;
  readonly completed: number;
  /** Completions of the interval that missed their per-request SLO. */
  readonly missed: number;
  /** Requests left unfinished when a truncated episode ended (count as misses); 0 otherwise. */
  readonly unfinished: number;
  /** GPU-seconds paid in the interval (starting, active and draining instances). */
  readonly gpu_seconds: number;
  readonly pools: readonly PoolInterval[];
  /** Scale-ups, drains, re-activations and cancellations the interval's decision caused. */
  readonly scale_events: number;
  /** Scale-ups the manager refused (pool max, max_total_instances, quota). */
  readonly refused: number;
  /** Requests held at the scheduler at the end of the interval. */
  readonly queued: number;
  /** Prompt tokens of the held requests (estimated from the interval's mean prompt). */
  readonly queued_prompt_tokens: number;
  /** Slowdown percentiles of the interval's completions (null when none completed). */
  readonly ttft_slowdown: Percentiles | null;
  readonly tbt_slowdown: Percentiles | null;
  /** The scheduler's per-instance prefill token budget (spec's prompt_max_pending_batch_tokens). */
  readonly prompt_max_pending_batch_tokens: number;
}

export interface RewardWeights {
  readonly w_cost: number;
  readonly w_slo: number;
  readonly w_switch: number;
  readonly w_util: number;
  readonly w_queue: number;
  readonly w_congestion: number;
}

/** Per-variant defaults: splitscale's own, and the upstream code defaults of spec §5.4. */
export const DEFAULT_WEIGHTS: Readonly<Record<RlRewardConfig["variant"], RewardWeights>> = {
  splitscale: { w_cost: 0.05, w_slo: 2, w_switch: 0.005, w_util: 0, w_queue: 0, w_congestion: 0 },
  "drl-rule": { w_cost: 0.1, w_slo: 0, w_switch: 0, w_util: 0, w_queue: 1, w_congestion: 1 },
  "origin-slo": { w_cost: 0.5, w_slo: 0.5, w_switch: 0, w_util: 0, w_queue: 0, w_congestion: 0 },
};

export function rewardWeights(config: RlRewardConfig): RewardWeights {
  const defaults = DEFAULT_WEIGHTS[config.variant];
  return {
    w_cost: config.w_cost ?? defaults.w_cost,
    w_slo: config.w_slo ?? defaults.w_slo,
    w_switch: config.w_switch ?? defaults.w_switch,
    w_util: config.w_util ?? defaults.w_util,
    w_queue: config.w_queue ?? defaults.w_queue,
    w_congestion: config.w_congestion ?? defaults.w_congestion,
  };
}

/** The reward and its parts (logged by training for inspection). */
export interface RewardBreakdown {
  readonly reward: number;
  readonly terms: Readonly<Record<string, number>>;
}

const LOG_QUEUE = Math.log1p(1000);

function instances(pool: PoolInterval): number {
  return pool.starting + pool.active + pool.draining;
}

/** Cost of the interval: replicas paid for (GPU time / (interval · GPUs per unit)), or live instances. */
export function intervalCost(info: IntervalInfo, config: RlRewardConfig): number {
  if (config.cost_unit === "instances") return info.pools.reduce((sum, pool) => sum + instances(pool), 0);
  return info.interval_s > 0 ? info.gpu_seconds / info.interval_s / config.gpus_per_cost_unit : 0;
}

/** Share of the interval's completions (plus requests left unfinished at a cut-off) that missed the SLO. */
export function missFraction(info: IntervalInfo): number {
  const judged = info.completed + info.unfinished;
  return judged > 0 ? (info.missed + info.unfinished) / judged : 0;
}

function splitscaleReward(info: IntervalInfo, config: RlRewardConfig, w: RewardWeights): RewardBreakdown {
  const cost = intervalCost(info, config);
  const miss = missFraction(info);
  let overload = 0;
  for (const pool of info.pools) {
    // Decode replicas are bound by KV memory as much as by compute.
    const load = pool.role === "decode" ? Math.max(pool.busy_fraction, pool.kv_usage) : pool.busy_fraction;
    overload += Math.max(0, load - config.util_target) / Math.max(1e-9, 1 - config.util_target);
  }
  overload /= Math.max(1, info.pools.length);
  const queue = Math.log1p(info.queued) / LOG_QUEUE;
  const terms = {
    cost: -w.w_cost * cost,
    slo: -w.w_slo * miss,
    switch: -w.w_switch * info.scale_events,
    util: -w.w_util * overload,
    queue: -w.w_queue * queue,
  };
  return { reward: terms.cost + terms.slo + terms.switch + terms.util + terms.queue, terms };
}

function byRole(info: IntervalInfo, role: PoolRole): PoolInterval[] {
  return info.pools.filter((pool) => pool.role === role);
}

function drlRuleReward(info: IntervalInfo, w: RewardWeights): RewardBreakdown {
  const prefill = [...byRole(info, "prefill"), ...byRole(info, "mixed")];
  const decode = byRole(info, "decode");
  const active = info.pools.reduce((sum, pool) => sum + pool.active, 0);
  const activePrefill = prefill.reduce((sum, pool) => sum + pool.active, 0);
  const pending = prefill.reduce((sum, pool) => sum + pool.pending_prefill_tokens, 0);
  // The fork divides by n_p and fails when no prompt instance is ACTIVE (#30): at least one.
  const congestion = Math.min(
    1,
    Math.max(0, pending / (Math.max(1, activePrefill) * Math.max(1, info.prompt_max_pending_batch_tokens))),
  );
  const blocked = info.queued_prompt_tokens / Math.max(info.arrived_prompt_tokens, 1);
  const kv = decode.length > 0 ? decode.reduce((sum, pool) => sum + pool.kv_usage, 0) / decode.length : 0;
  const terms = {
    cost: -w.w_cost * active,
    queue: -w.w_queue * blocked,
    congestion: -w.w_congestion * congestion * congestion,
    util: -w.w_util * Math.max(0, kv - 0.8),
  };
  return { reward: terms.cost + terms.queue + terms.congestion + terms.util, terms };
}

/** The Splitwise paper's slowdown thresholds (p50, p90, p99) that originDRL scores against. */
export interface SloThresholds {
  readonly ttft: Percentiles;
  readonly tbt: Percentiles;
}

/** originDRL's SLO score of one interval, 0..210 (210 = every percentile within its threshold). */
export function originSloScore(
  info: IntervalInfo,
  thresholds: SloThresholds,
  upstreamEmptyWindow: boolean,
): number {
  const ttft = info.ttft_slowdown;
  const tbt = info.tbt_slowdown;
  if (ttft === null || tbt === null) {
    // Nothing completed. Upstream scores that as perfect, which rewards starving the queue (#30);
    // here it is perfect only when nothing is waiting either.
    return upstreamEmptyWindow || info.queued === 0 ? 210 : 0;
  }
  let score = 0;
  let violated = false;
  for (const key of ["p50", "p90", "p99"] as const) {
    const s = thresholds.ttft[key];
    if (ttft[key] <= s) score += 30;
    else {
      violated = true;
      score += Math.max(0, 20 - (5 * (ttft[key] - s)) / s);
    }
    const u = thresholds.tbt[key];
    if (tbt[key] <= u) score += 20;
    else {
      violated = true;
      score += Math.max(0, 10 - (5 * (tbt[key] - u)) / u);
    }
  }
  return score + (violated ? 0 : 60);
}

function originSloReward(
  info: IntervalInfo,
  w: RewardWeights,
  thresholds: SloThresholds,
  upstreamEmptyWindow: boolean,
  agentPools: readonly string[] | undefined,
): RewardBreakdown {
  const mine = agentPools === undefined ? info.pools : info.pools.filter((p) => agentPools.includes(p.name));
  const cost = mine.reduce((sum, pool) => sum + pool.active, 0);
  const slo = originSloScore(info, thresholds, upstreamEmptyWindow);
  const terms = { slo: 0.1 * w.w_slo * slo, cost: -0.1 * w.w_cost * cost };
  return { reward: terms.slo + terms.cost, terms };
}

/**
 * The reward of one interval. `agentPools`: the pools an agent of a split setup controls (origin-slo
 * charges each agent its own pool, as the fork did); undefined for a joint agent.
 */
export function computeReward(
  info: IntervalInfo,
  config: RlRewardConfig,
  thresholds: SloThresholds,
  agentPools?: readonly string[],
): RewardBreakdown {
  const w = rewardWeights(config);
  switch (config.variant) {
    case "splitscale":
      return splitscaleReward(info, config, w);
    case "drl-rule":
      return drlRuleReward(info, w);
    case "origin-slo":
      return originSloReward(info, w, thresholds, config.upstream_empty_window, agentPools);
  }
}
