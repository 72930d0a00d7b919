import { z } from "zod";
import { UsageError } from "../errors.ts";
import { parsePolicyConfig, type PolicyContext, type PolicyPool } from "./registry.ts";
import {
  GAUGES,
  activeCount,
  type Decision,
  type Observation,
  type Policy,
  type PoolDecision,
  type PoolView,
  type TrafficWindow,
} from "./types.ts";

/**
 * `sla`: splitscale's prefill/decode-aware capacity planner (autoscalers spec §9, items 1–8).
 *
 * - Sizes in tokens, not pods: prefill replicas from forecast prompt tokens/s over one replica's
 *   measured prefill throughput; decode replicas from the KV-cache tokens that in-flight decodes hold
 *   (Little's law: arrival rate × decode time × tokens per request), against each replica's KV capacity.
 * - Counts capacity that is still starting (desired includes starting replicas), so it never cascades.
 * - Looks ahead by the startup delay: a Holt (level + trend) forecast of the arrival rates.
 * - Reacts to what the forecast missed: a prompt backlog that the ready replicas cannot clear within
 *   `backlog_budget_s`, requests held at the gateway, or a KV cache above its target.
 * - Cost-aware scale-down: a replica is only released when the plan has wanted fewer replicas for the
 *   whole hold time (ski rental: default the startup delay, the price of getting it back).
 */
export const slaConfigSchema = z.strictObject({
  /** Fraction of requests allowed to wait longer than their TTFT budget in a prefill queue. */
  ttft_miss_target: z.number().gt(0).lt(1).default(0.003),
  /** TTFT budget as a multiple of the unloaded TTFT (the Splitwise SLO's p99 slowdown is 6). */
  ttft_slowdown: z.number().gt(1).default(6),
  /** Never plan prefill replicas busier than this, whatever the queueing model says. */
  max_prefill_utilization: z.number().gt(0).max(1).default(0.7),
  /** Target fraction of a decode replica's KV cache held by in-flight requests. */
  decode_kv_utilization: z.number().gt(0).max(2).default(1),
  /** Seconds of prefill work a pool's ready replicas may have queued before it counts as a backlog. */
  backlog_budget_s: z.number().positive().default(0.5),
  /** Consecutive decisions with a backlog before one replica is added outside the forecast. */
  backlog_decisions: z.int().positive().default(3),
  /** Scale-down margin: a replica is released only if the SLO model holds with this fraction of the miss target (1 = no margin; the hold window gives the hysteresis). */
  scale_down_margin: z.number().gt(0).max(1).default(1),
  /** Scale-down margin on decode: release only below this much less KV utilization than the target. */
  decode_kv_margin: z.number().min(0).lt(1).default(0.05),
  /** KV tokens held by in-flight decodes relative to (mean prompt + mean output): long outputs stay longer. */
  decode_size_bias: z.number().min(1).default(1.2),
  /** Coefficient of variation of KV tokens per request (prompt + output), for the demand's spread. */
  decode_size_cv: z.number().min(0).default(0.9),
  /** Standard deviations of KV demand above its mean that decode capacity must hold. */
  decode_overflow_z: z.number().min(0).default(0),
  /** Half-life of the arrival-rate level estimate. */
  level_halflife_s: z.number().positive().default(20),
  /** Half-life of the trend estimate. */
  trend_halflife_s: z.number().positive().default(120),
  /** Forecast horizon; default: the pool's startup delay plus one decision interval. */
  horizon_s: z.number().nonnegative().optional(),
  /** How long the plan must want fewer replicas before one is released; default: the startup delay. */
  scale_down_hold_s: z.number().nonnegative().optional(),
  /** Burst reserve: capacity for the forecast plus this many standard deviations of the per-window rate. */
  burst_z: z.number().min(0).default(0),
  /**
   * Learned burst reserve: every decision that finds requests held at the gateway adds this many
   * standard deviations to the reserve (up to `burst_reserve_max`); it halves every
   * `burst_reserve_halflife_s` without such stress. Smooth traffic keeps it near 0, bursty traffic
   * that the forecast cannot follow within the startup delay builds it up.
   */
  burst_reserve_step: z.number().min(0).default(0.1),
  burst_reserve_max: z.number().min(0).default(3),
  burst_reserve_halflife_s: z.number().positive().default(900),
  /** Length of the windows whose rates measure burstiness (about the startup delay). */
  burst_window_s: z.number().positive().default(60),
  /** How many recent windows the burstiness is measured over. */
  burst_windows: z.int().min(2).default(10),
  /** Decision interval in seconds. */
  interval_s: z.number().positive().default(2),
  /** Only when no performance model is available (live mode without a profile): one replica's prefill tokens/s. */
  prefill_tokens_per_s: z.number().positive().optional(),
  /** Only without a performance model: seconds per decode step. */
  decode_step_s: z.number().positive().optional(),
});

export type SlaConfig = z.output<typeof slaConfigSchema>;

interface Smoothed {
  level: number;
  trend: number;
}

export interface SlaState {
  readonly initialized: boolean;
  readonly lastTime: number;
  /** Arrival rate (requests/s) and prompt-token rate (tokens/s), Holt-smoothed. */
  readonly requests: Smoothed;
  readonly promptTokens: Smoothed;
  /** Mean output tokens per completed request (EWMA); prompt tokens per arrival likewise. */
  readonly meanOutput: number;
  readonly meanPrompt: number;
  /** Per pool: (time, replicas the plan wanted) within the hold window. */
  readonly wants: Readonly<Record<string, readonly { t: number; n: number }[]>>;
  /** Per pool: consecutive decisions with a prompt backlog above budget. */
  readonly backlogTicks: Readonly<Record<string, number>>;
  /** Learned extra standard deviations of burst reserve (see `burst_reserve_step`). */
  readonly reserve: number;
  /** Rates over the last few `burst_window_s` windows (to measure burstiness) and the window being filled. */
  readonly windows: {
    readonly open: { readonly seconds: number; readonly requests: number; readonly prompt: number };
    readonly closed: readonly { readonly requests: number; readonly prompt: number }[];
  };
}

export interface PoolPerformance {
  /** Prompt tokens per second one replica prefills at its token budget. */
  readonly prefillTokensPerS: number;
  /** Unloaded prefill seconds of a prompt of this many tokens. */
  readonly prefillS: (tokens: number) => number;
  /** Seconds of one decode step at a moderate batch. */
  readonly decodeStepS: (batch: number, context: number) => number;
}

/** What one replica of a pool can do, from its performance model (or the config without one). */
export function slaPerformance(pool: PolicyPool, config: SlaConfig, where: string): PoolPerformance {
  const latency = pool.latency;
  if (latency === undefined) {
    if (config.prefill_tokens_per_s === undefined || config.decode_step_s === undefined) {
      throw new UsageError(
        `${where}: pool ${pool.name} has no performance model; set prefill_tokens_per_s and decode_step_s (measure them with \`splitscale perf\`)`,
      );
    }
    const step = config.decode_step_s;
    const rate = config.prefill_tokens_per_s;
    return { prefillTokensPerS: rate, prefillS: (tokens) => tokens / rate, decodeStepS: () => step };
  }
  const budget = pool.capacity?.maxBatchTokens ?? 2048;
  const prefillTime = latency.iterationTime({
    prefillTokens: budget,
    numPrefill: 1,
    numDecode: 0,
    decodeContextTokens: 0,
  });
  return {
    prefillTokensPerS: budget / prefillTime,
    prefillS: (tokens) =>
      latency.iterationTime({ prefillTokens: tokens, numPrefill: 1, numDecode: 0, decodeContextTokens: 0 }),
    decodeStepS: (batch, context) =>
      latency.iterationTime({
        prefillTokens: 0,
        numPrefill: 0,
        numDecode: Math.max(1, Math.round(batch)),
        decodeContextTokens: Math.max(1, Math.round(batch)) * context,
      }),
  };
}

/** One Holt (double exponential smoothing) step over a rate observed on a window of `dt` seconds. */
function holt(
  previous: Smoothed,
  observed: number,
  dt: number,
  levelHalfLife: number,
  trendHalfLife: number,
): Smoothed {
  const alpha = 1 - Math.pow(0.5, dt / levelHalfLife);
  const beta = 1 - Math.pow(0.5, dt / trendHalfLife);
  const predicted = previous.level + previous.trend * dt;
  const level = Math.max(0, predicted + alpha * (observed - predicted));
  const trend = previous.trend + beta * ((level - previous.level) / dt - previous.trend);
  return { level, trend };
}

function forecast(smoothed: Smoothed, horizon: number): number {
  return Math.max(0, smoothed.level + Math.max(0, smoothed.trend) * horizon);
}

function gaugeSum(pool: PoolView, gauge: string): { sum: number; reporting: number } {
  let sum = 0;
  let reporting = 0;
  for (const replica of pool.replicas) {
    if (replica.phase !== "ready") continue;
    const value = replica.metrics?.gauges[gauge];
    if (value === undefined) continue;
    sum += value;
    reporting++;
  }
  return { sum, reporting };
}

export function createSlaPolicy(
  rawConfig: Readonly<Record<string, unknown>>,
  context: PolicyContext,
): Policy<SlaState> {
  const where = `${context.source}: autoscaling.policy_config`;
  const config = parsePolicyConfig(slaConfigSchema, rawConfig, where);
  const perf = new Map(context.pools.map((pool) => [pool.name, slaPerformance(pool, config, where)]));
  const startupOf = (pool: PolicyPool): number => pool.capacity?.startupDelay_s ?? 60;

  /** Replicas the pool needs now: `up` at the SLO targets, `keep` with the scale-down margin. */
  function plan(
    observation: Observation,
    state: SlaState,
    pool: PoolView,
    info: PolicyPool,
    reasons: string[],
  ): { up: number; keep: number; backlogged: boolean } {
    const performance = perf.get(pool.name)!;
    const horizon = config.horizon_s ?? startupOf(info) + config.interval_s;
    const current = activeCount(pool);
    const ready = pool.replicas.filter((replica) => replica.phase === "ready").length;
    const starting = pool.replicas.some((replica) => replica.phase === "starting");
    const held = observation.queue.dueBusy + observation.queue.noReplica;
    // Plan for the forecast plus the burstiness seen at the scale of the startup delay: traffic that
    // swings from minute to minute (on/off bursts) needs capacity held for its swings, smooth
    // traffic does not.
    const swing = windowSpread(state.windows);
    const z = config.burst_z + state.reserve;
    // Decode sees bursts smoothed over the decode time (and its measured KV is a floor below), so
    // the reserve goes to prefill.
    const decodeRequestRate = Math.max(state.requests.level, forecast(state.requests, horizon));
    const requestRate = decodeRequestRate + z * swing.requests;
    const promptRate =
      Math.max(state.promptTokens.level, forecast(state.promptTokens, horizon)) + z * swing.prompt;

    let up = 0;
    let keep = 0;
    let backlogged = false;
    const notes: string[] = [];
    if (pool.role !== "decode") {
      const need = prefillReplicas(
        promptRate,
        requestRate,
        state.meanPrompt,
        performance,
        config.ttft_miss_target,
        config,
      );
      up += need;
      keep += prefillReplicas(
        promptRate,
        requestRate,
        state.meanPrompt,
        performance,
        config.ttft_miss_target * config.scale_down_margin,
        config,
      );
      notes.push(`prompt ${promptRate.toFixed(0)} tok/s → ${need}`);
      // A backlog the ready replicas cannot clear within budget, several decisions in a row, means the
      // forecast missed: one more replica (not more: by the time it starts the burst may be gone).
      const backlog = gaugeSum(pool, GAUGES.pendingPrefillTokens).sum;
      const clearable = Math.max(ready, 1) * performance.prefillTokensPerS * config.backlog_budget_s;
      if (backlog > clearable) {
        backlogged = true;
        if (
          (state.backlogTicks[pool.name] ?? 0) + 1 >= config.backlog_decisions &&
          !starting &&
          up <= current
        ) {
          up = current + 1;
          notes.push(`prompt backlog ${backlog} tok for ${config.backlog_decisions} decisions`);
        }
      }
    }
    if (pool.role !== "prefill") {
      const capacity = pool.capacity.maxKvTokens;
      let kvDemand = decodeKvDemand(
        decodeRequestRate,
        state.meanPrompt,
        state.meanOutput,
        ready,
        performance,
        config,
      );
      const usage = gaugeSum(pool, GAUGES.kvCacheUsage);
      const growth = state.requests.level > 0 ? decodeRequestRate / state.requests.level : 1;
      const measured = usage.sum * capacity * growth;
      if (measured > kvDemand) kvDemand = measured;
      const kvHigh = decodeKvHigh(kvDemand, state.meanPrompt + state.meanOutput, config);
      const need = capacity > 0 ? Math.ceil(kvHigh / (capacity * config.decode_kv_utilization) - 1e-9) : 0;
      const relaxed = Math.max(0.05, config.decode_kv_utilization - config.decode_kv_margin);
      up += need;
      keep += capacity > 0 ? Math.ceil(kvHigh / (capacity * relaxed) - 1e-9) : 0;
      notes.push(`KV ${kvDemand.toFixed(0)} tok → ${need}`);
      const meanUsage = usage.reporting > 0 ? usage.sum / usage.reporting : 0;
      if (held > 0 && meanUsage > config.decode_kv_utilization && !starting && up <= current) {
        up = current + 1;
        notes.push(`KV ${meanUsage.toFixed(2)} full with ${held} held`);
      }
    }
    const bound = (n: number): number => Math.min(Math.max(n, pool.min, 1), pool.max);
    reasons.push(`${pool.name}: ${notes.join(", ")} → ${bound(up)}`);
    return { up: bound(up), keep: bound(Math.max(keep, up)), backlogged };
  }

  return {
    name: "sla",
    interval_s: config.interval_s,
    init: (now) => ({
      initialized: false,
      lastTime: now,
      requests: { level: 0, trend: 0 },
      promptTokens: { level: 0, trend: 0 },
      meanOutput: 200,
      meanPrompt: 1000,
      wants: {},
      backlogTicks: {},
      windows: { open: { seconds: 0, requests: 0, prompt: 0 }, closed: [] },
      reserve: 0,
    }),
    decide(observation, state) {
      const reasons: string[] = [];
      const smoothed = learnReserve(
        smooth(state, observation.traffic, observation.now, config),
        observation,
        config,
      );
      const targets: Record<string, PoolDecision> = {};
      const wants: Record<string, { t: number; n: number }[]> = {};
      const backlogTicks: Record<string, number> = {};
      for (const pool of observation.pools) {
        const info = context.pools.find((candidate) => candidate.name === pool.name);
        if (info === undefined) continue;
        const { up, keep, backlogged } = plan(observation, smoothed, pool, info, reasons);
        backlogTicks[pool.name] = backlogged ? (smoothed.backlogTicks[pool.name] ?? 0) + 1 : 0;
        // Bursty traffic (a built-up reserve) holds capacity longer between bursts.
        const hold = (config.scale_down_hold_s ?? startupOf(info)) * (1 + smoothed.reserve);
        const previous = smoothed.wants[pool.name] ?? [];
        const history = previous.filter((entry) => entry.t >= observation.now - hold);
        history.push({ t: observation.now, n: keep });
        wants[pool.name] = history;
        const current = activeCount(pool);
        // Up at once; down only once the plan (with its margin) has wanted fewer for a whole hold
        // window, and then only to the most it wanted during that window.
        const covered = (previous[0]?.t ?? observation.now) <= observation.now - hold;
        const desired =
          up >= current
            ? up
            : covered
              ? Math.min(current, Math.max(...history.map((entry) => entry.n)))
              : current;
        targets[pool.name] = { desired };
      }
      const decision: Decision = { targets, reasons };
      return { decision, state: { ...smoothed, wants, backlogTicks } };
    },
  };
}

/**
 * KV-cache tokens held by requests in decode, by Little's law: requests decoding at once (arrival
 * rate × output tokens × step time) × KV tokens each (long outputs stay longer, hence the size
 * bias). The step time depends a little on the batch: two fixed-point rounds are plenty.
 */
export function decodeKvDemand(
  requestsPerS: number,
  meanPrompt: number,
  meanOutput: number,
  replicas: number,
  performance: PoolPerformance,
  config: SlaConfig,
): number {
  const tokensPerRequest = meanPrompt + meanOutput;
  let inFlight = requestsPerS * meanOutput * performance.decodeStepS(1, tokensPerRequest);
  for (let round = 0; round < 2; round++) {
    const batch = inFlight / Math.max(replicas, 1);
    inFlight = requestsPerS * meanOutput * performance.decodeStepS(batch, tokensPerRequest);
  }
  return inFlight * tokensPerRequest * config.decode_size_bias;
}

/**
 * A high quantile of the KV demand. Requests in decode form an M/G/∞ population: their number is
 * Poisson (variance = mean) and each holds a size-variable share of tokens, so the spread of the
 * held tokens is √(in flight) × E[tokens] × √(1 + cv²); plan for mean + z·spread.
 */
export function decodeKvHigh(meanKv: number, tokensPerRequest: number, config: SlaConfig): number {
  if (meanKv <= 0 || tokensPerRequest <= 0) return Math.max(0, meanKv);
  const inFlight = meanKv / tokensPerRequest;
  const spread = Math.sqrt(inFlight) * tokensPerRequest * Math.sqrt(1 + config.decode_size_cv ** 2);
  return meanKv + config.decode_overflow_z * spread;
}

/** Decode replicas whose KV caches hold the demand at the configured utilization. */
export function decodeReplicas(
  requestsPerS: number,
  meanPrompt: number,
  meanOutput: number,
  replicas: number,
  maxKvTokens: number,
  performance: PoolPerformance,
  config: SlaConfig,
): number {
  if (maxKvTokens <= 0) return 0;
  const demand = decodeKvDemand(requestsPerS, meanPrompt, meanOutput, replicas, performance, config);
  const high = decodeKvHigh(demand, meanPrompt + meanOutput, config);
  return Math.ceil(high / (maxKvTokens * config.decode_kv_utilization) - 1e-9);
}

/**
 * Erlang C: probability that an arrival waits, for `servers` servers offered `load` Erlangs
 * (load < servers). Computed with the stable recurrence over the Erlang-B blocking probability.
 */
export function erlangC(servers: number, load: number): number {
  if (load <= 0) return 0;
  if (load >= servers) return 1;
  let blocking = 1;
  for (let k = 1; k <= servers; k++) blocking = (load * blocking) / (k + load * blocking);
  return blocking / (1 - (load / servers) * (1 - blocking));
}

/**
 * Prefill replicas so that the fraction of prompts waiting longer than their TTFT budget stays under
 * `ttft_miss_target` (autoscalers spec §9.2: queueing headroom from the SLO instead of a magic
 * utilization). M/M/n tail: P(W > t) = C(n, a)·exp(−(n − a)·t / E[S]), with E[S] the mean prefill
 * time and a prompt of p tokens allowed to wait (slowdown − 1)·prefill(p). The miss rate is averaged
 * over an exponential prompt-size distribution with the observed mean.
 */
export function prefillReplicas(
  promptTokensPerS: number,
  requestsPerS: number,
  meanPrompt: number,
  performance: PoolPerformance,
  missTarget: number,
  config: SlaConfig,
): number {
  if (promptTokensPerS <= 0 || requestsPerS <= 0) return 0;
  const meanService = meanPrompt / performance.prefillTokensPerS;
  const load = promptTokensPerS / performance.prefillTokensPerS;
  const quantiles = 16;
  const budgets: number[] = [];
  for (let i = 0; i < quantiles; i++) {
    const prompt = Math.max(1, -meanPrompt * Math.log(1 - (i + 0.5) / quantiles));
    budgets.push((config.ttft_slowdown - 1) * performance.prefillS(prompt));
  }
  let servers = Math.max(1, Math.ceil(load / config.max_prefill_utilization));
  for (; servers < 10_000; servers++) {
    const wait = erlangC(servers, load);
    let miss = 0;
    for (const budget of budgets) miss += wait * Math.exp((-(servers - load) * budget) / meanService);
    if (miss / quantiles <= missTarget) break;
  }
  return servers;
}

function learnReserve(state: SlaState, observation: Observation, config: SlaConfig): SlaState {
  const dt = observation.traffic.window_s;
  const held = observation.queue.dueBusy + observation.queue.noReplica;
  let reserve = state.reserve * Math.pow(0.5, Math.max(0, dt) / config.burst_reserve_halflife_s);
  if (held > 0) reserve = Math.min(config.burst_reserve_max, reserve + config.burst_reserve_step);
  return reserve === state.reserve ? state : { ...state, reserve };
}

/** Standard deviation of the per-window rates kept in the state (0 with fewer than two windows). */
function windowSpread(windows: SlaState["windows"]): { requests: number; prompt: number } {
  const rates = windows.closed;
  if (rates.length < 2) return { requests: 0, prompt: 0 };
  const std = (values: number[]): number => {
    const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
    return Math.sqrt(values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (values.length - 1));
  };
  return { requests: std(rates.map((rate) => rate.requests)), prompt: std(rates.map((rate) => rate.prompt)) };
}

/** Adds one traffic interval to the current variability window; closes it when it is long enough. */
function accumulateWindow(
  windows: SlaState["windows"],
  traffic: TrafficWindow,
  config: SlaConfig,
): SlaState["windows"] {
  const open = {
    seconds: windows.open.seconds + traffic.window_s,
    requests: windows.open.requests + traffic.arrivals,
    prompt: windows.open.prompt + traffic.promptTokens,
  };
  if (open.seconds < config.burst_window_s) return { ...windows, open };
  const closed = [
    ...windows.closed,
    { requests: open.requests / open.seconds, prompt: open.prompt / open.seconds },
  ];
  return { open: { seconds: 0, requests: 0, prompt: 0 }, closed: closed.slice(-config.burst_windows) };
}

function smooth(state: SlaState, traffic: TrafficWindow, now: number, config: SlaConfig): SlaState {
  const dt = traffic.window_s;
  if (dt <= 0) return state;
  state = { ...state, windows: accumulateWindow(state.windows, traffic, config) };
  const requestRate = traffic.arrivals / dt;
  const promptRate = traffic.promptTokens / dt;
  const alpha = 1 - Math.pow(0.5, dt / config.level_halflife_s);
  const meanPrompt =
    traffic.arrivals > 0
      ? state.meanPrompt + alpha * (traffic.promptTokens / traffic.arrivals - state.meanPrompt)
      : state.meanPrompt;
  const meanOutput =
    traffic.completions > 0
      ? state.meanOutput + alpha * (traffic.outputTokens / traffic.completions - state.meanOutput)
      : state.meanOutput;
  if (!state.initialized) {
    return {
      ...state,
      initialized: true,
      lastTime: now,
      requests: { level: requestRate, trend: 0 },
      promptTokens: { level: promptRate, trend: 0 },
      meanPrompt: traffic.arrivals > 0 ? traffic.promptTokens / traffic.arrivals : state.meanPrompt,
      meanOutput,
    };
  }
  return {
    ...state,
    lastTime: now,
    requests: holt(state.requests, requestRate, dt, config.level_halflife_s, config.trend_halflife_s),
    promptTokens: holt(state.promptTokens, promptRate, dt, config.level_halflife_s, config.trend_halflife_s),
    meanPrompt,
    meanOutput,
  };
}
