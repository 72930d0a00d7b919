import { z } from "zod";
import { parsePolicyConfig, type PolicyContext, type PolicyPool } from "./registry.ts";
import { EMPTY_WINDOW, accumulateWindow, burstPlan, type BurstWindows } from "./sla-bursts.ts";
import {
  decodeKvDemand,
  decodeReplicas,
  decodeSpikeShare,
  prefillReplicas,
  slaPerformance,
} from "./sla-capacity.ts";
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
 * - Sizes in tokens, not pods: prefill replicas from forecast prompt tokens/s with an M/M/n model of
 *   the TTFT budget; decode replicas from the requests in decode at once (Little's law) against KV
 *   slots, with an M/M/c model of the wait for KV room that the TBT budget allows. The KV model is
 *   calibrated online against the KV the replicas report while traffic is steady.
 * - Counts capacity that is still starting (desired includes starting replicas), so it never cascades.
 * - Looks ahead by the startup delay: a Holt (level + trend) forecast of the arrival rates.
 * - Plans for bursts it cannot react to: windows whose arrivals fail a Poisson dispersion test record
 *   their peak interval's rates, and capacity is held for an upper prediction bound of the next
 *   window's peak over the recent windows, so on/off traffic finds capacity ready when the next burst
 *   comes, while smooth traffic (which never fails the test) pays nothing for it.
 * - Reacts to what the forecast missed: a prompt backlog that the ready replicas cannot clear within
 *   `backlog_budget_s`, or requests held at the gateway while the KV caches are above their target.
 * - Cost-aware scale-down: a replica is only released when the plan has wanted fewer replicas for the
 *   whole hold time (ski rental: default the startup delay, the price of getting it back).
 */
export const slaConfigSchema = z.strictObject({
  /** Fraction of requests allowed to wait longer than their TTFT budget in a prefill queue. */
  ttft_miss_target: z.number().gt(0).lt(1).default(0.003),
  /** TTFT budget as a multiple of the unloaded TTFT (the Splitwise SLO's p99 slowdown is 6). */
  ttft_slowdown: z.number().gt(1).default(6),
  /** TBT budget as a multiple of the unloaded TBT (the Splitwise SLO's p99 slowdown is 5). */
  tbt_slowdown: z.number().gt(1).default(5),
  /** Fraction of requests allowed to wait for decode KV room longer than their TBT budget allows. */
  tbt_miss_target: z.number().gt(0).lt(1).default(0.003),
  /** Never plan prefill replicas busier than this, whatever the queueing model says. */
  max_prefill_utilization: z.number().gt(0).max(1).default(0.7),
  /** Fraction of a decode replica's KV cache the plan fills with in-flight requests. */
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
  /** Half-life of the request-size estimates (mean prompt and output tokens, every request weighted alike). */
  size_halflife_s: z.number().positive().default(300),
  /** Half-life of the trend estimate. */
  trend_halflife_s: z.number().positive().default(120),
  /** Forecast horizon; default: the pool's startup delay plus one decision interval. */
  horizon_s: z.number().nonnegative().optional(),
  /** How long the plan must want fewer replicas before one is released; default: the startup delay. */
  scale_down_hold_s: z.number().nonnegative().optional(),
  /** Length of the windows whose arrivals are tested for bursts (about the startup delay). */
  burst_window_s: z.number().positive().default(60),
  /** How many recent windows the burst plan is computed over (how long a burst is remembered). */
  burst_windows: z.int().min(2).default(10),
  /**
   * Burst test: a window holds a burst when its arrivals are this improbable for Poisson arrivals at
   * the window's mean rate (Pearson's dispersion test over its intervals). Smooth traffic does not
   * pass it, so the burst plan below costs it nothing.
   */
  burst_significance: z.number().gt(0).lt(1).default(1e-6),
  /**
   * Burst plan: prefill (and decode) capacity for this upper prediction bound of the next window's
   * burst peak, from the peaks of the last `burst_windows` windows (0 for a window without a burst).
   */
  burst_quantile: z.number().gt(0.5).lt(1).default(0.99),
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
  /**
   * Mean output tokens per completed request and prompt tokens per arrival: ratios of decayed sums
   * (`size_halflife_s`), so every request weighs the same however bursty the traffic.
   */
  readonly meanOutput: number;
  readonly meanPrompt: number;
  readonly sizes: {
    readonly prompt: number;
    readonly arrivals: number;
    readonly output: number;
    readonly completions: number;
  };
  /**
   * Per decode pool: decayed sums of the KV tokens its replicas report in use and of what the KV
   * model predicts for the same traffic, sampled while the traffic is steady (no burst, nothing held).
   * Their ratio calibrates the model (its mean-size and size-bias assumptions) to this workload.
   */
  readonly kvCalibration: Readonly<Record<string, { readonly measured: number; readonly model: number }>>;
  /** Per pool: (time, replicas the plan wanted) within the hold window. */
  readonly wants: Readonly<Record<string, readonly { t: number; n: number }[]>>;
  /** Per pool: consecutive decisions with a prompt backlog above budget. */
  readonly backlogTicks: Readonly<Record<string, number>>;
  /** Burst peaks of the last `burst_windows` windows of `burst_window_s`, and the window being filled. */
  readonly windows: BurstWindows;
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
  ): { up: number; keep: number; backlogged: boolean; kvSample?: { measured: number; model: number } } {
    const performance = perf.get(pool.name)!;
    const horizon = config.horizon_s ?? startupOf(info) + config.interval_s;
    const current = activeCount(pool);
    const ready = pool.replicas.filter((replica) => replica.phase === "ready").length;
    const starting = pool.replicas.some((replica) => replica.phase === "starting");
    const held = observation.queue.dueBusy + observation.queue.noReplica;
    // Plan for the larger of the forecast and the burst plan: on/off traffic whose bursts are over
    // before a replica could start needs their capacity in place before the next one; smooth
    // traffic has no burst plan.
    const burst = burstPlan(state.windows, config);
    const smoothRequestRate = Math.max(state.requests.level, forecast(state.requests, horizon));
    const requestRate = Math.max(smoothRequestRate, burst.requests);
    const promptRate = Math.max(
      state.promptTokens.level,
      forecast(state.promptTokens, horizon),
      burst.prompt,
    );
    // A decode pool behind separate prefill pools never receives requests faster than those can
    // prefill them at their maximum size.
    const prefillPools = observation.pools.filter((candidate) => candidate.role === "prefill");
    const upstream =
      pool.role === "decode" && prefillPools.length > 0 && state.meanPrompt > 0
        ? prefillPools.reduce(
            (sum, candidate) =>
              sum + candidate.max * (perf.get(candidate.name)?.prefillTokensPerS ?? Infinity),
            0,
          ) / state.meanPrompt
        : Infinity;
    const burstDecodeRate = Math.min(
      upstream,
      burst.requests *
        decodeSpikeShare(
          Math.max(burst.seconds, observation.traffic.window_s),
          state.meanOutput,
          state.meanPrompt,
          performance,
        ),
    );

    let up = 0;
    let keep = 0;
    let backlogged = false;
    let kvSample: { measured: number; model: number } | undefined;
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
      notes.push(
        `prompt ${promptRate.toFixed(0)} tok/s${burst.prompt > 0 ? ` (burst plan ${burst.prompt.toFixed(0)})` : ""} → ${need}`,
      );
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
      const relaxed = Math.max(0.05, config.decode_kv_utilization - config.decode_kv_margin);
      const usage = gaugeSum(pool, GAUGES.kvCacheUsage);
      const measuredNow = usage.sum * capacity;
      // Calibrate the KV model on steady, unconstrained traffic: what the ready replicas hold against
      // what the model predicts for the current rate. Bursts, held requests and caches near full (which
      // cap what can be measured) would bias it.
      const unconstrained =
        usage.reporting > 0 &&
        usage.sum / usage.reporting < config.decode_kv_utilization - config.decode_kv_margin;
      if (
        burst.requests === 0 &&
        held === 0 &&
        unconstrained &&
        observation.traffic.arrivals > 0 &&
        state.requests.level > 0
      ) {
        const model = decodeKvDemand(
          state.requests.level,
          state.meanPrompt,
          state.meanOutput,
          ready,
          performance,
          config,
        );
        if (model > 0) kvSample = { measured: measuredNow, model };
      }
      const calibration = state.kvCalibration[pool.name];
      const scale =
        calibration !== undefined && calibration.model > 0 && calibration.measured > 0
          ? Math.min(4, Math.max(0.25, calibration.measured / calibration.model))
          : 1;
      // Steady traffic: the TBT queueing model. A burst: held at once (no time to queue it away).
      const steady = (utilization: number): number =>
        decodeReplicas(
          Math.min(upstream, smoothRequestRate),
          state.meanPrompt,
          state.meanOutput,
          ready,
          capacity,
          performance,
          config,
          utilization,
          scale,
        );
      const burstKv =
        burstDecodeRate > 0
          ? decodeKvDemand(burstDecodeRate, state.meanPrompt, state.meanOutput, ready, performance, config)
          : 0;
      const holdAll = (utilization: number): number =>
        capacity > 0 ? Math.ceil(burstKv / (capacity * utilization) - 1e-9) : 0;
      const need = Math.max(steady(config.decode_kv_utilization), holdAll(config.decode_kv_utilization));
      up += need;
      keep += Math.max(steady(relaxed), holdAll(relaxed));
      notes.push(
        `${smoothRequestRate.toFixed(1)} req/s (KV model × ${scale.toFixed(2)})${burstKv > 0 ? `, burst plan ${burstDecodeRate.toFixed(1)} req/s: KV ${burstKv.toFixed(0)} tok` : ""} → ${need}`,
      );
      const meanUsage = usage.reporting > 0 ? usage.sum / usage.reporting : 0;
      if (held > 0 && meanUsage > config.decode_kv_utilization && !starting && up <= current) {
        up = current + 1;
        notes.push(`KV ${meanUsage.toFixed(2)} full with ${held} held`);
      }
    }
    const bound = (n: number): number => Math.min(Math.max(n, pool.min, 1), pool.max);
    reasons.push(`${pool.name}: ${notes.join(", ")} → ${bound(up)}`);
    return {
      up: bound(up),
      keep: bound(Math.max(keep, up)),
      backlogged,
      ...(kvSample === undefined ? {} : { kvSample }),
    };
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
      sizes: { prompt: 0, arrivals: 0, output: 0, completions: 0 },
      kvCalibration: {},
      wants: {},
      backlogTicks: {},
      windows: { open: EMPTY_WINDOW, closed: [] },
    }),
    decide(observation, state) {
      const reasons: string[] = [];
      const smoothed = smooth(state, observation.traffic, observation.now, config);
      const targets: Record<string, PoolDecision> = {};
      const wants: Record<string, { t: number; n: number }[]> = {};
      const backlogTicks: Record<string, number> = {};
      const kvCalibration: Record<string, { measured: number; model: number }> = {
        ...smoothed.kvCalibration,
      };
      const decay = Math.pow(0.5, Math.max(0, observation.traffic.window_s) / config.size_halflife_s);
      for (const pool of observation.pools) {
        const info = context.pools.find((candidate) => candidate.name === pool.name);
        if (info === undefined) continue;
        const { up, keep, backlogged, kvSample } = plan(observation, smoothed, pool, info, reasons);
        if (kvSample !== undefined) {
          const previous = kvCalibration[pool.name] ?? { measured: 0, model: 0 };
          kvCalibration[pool.name] = {
            measured: previous.measured * decay + kvSample.measured,
            model: previous.model * decay + kvSample.model,
          };
        }
        backlogTicks[pool.name] = backlogged ? (smoothed.backlogTicks[pool.name] ?? 0) + 1 : 0;
        const hold = config.scale_down_hold_s ?? startupOf(info);
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
      return { decision, state: { ...smoothed, wants, backlogTicks, kvCalibration } };
    },
  };
}

function smooth(state: SlaState, traffic: TrafficWindow, now: number, config: SlaConfig): SlaState {
  const dt = traffic.window_s;
  if (dt <= 0) return state;
  state = { ...state, windows: accumulateWindow(state.windows, traffic, config) };
  const requestRate = traffic.arrivals / dt;
  const promptRate = traffic.promptTokens / dt;
  const keep = Math.pow(0.5, dt / config.size_halflife_s);
  const sizes = {
    prompt: state.sizes.prompt * keep + traffic.promptTokens,
    arrivals: state.sizes.arrivals * keep + traffic.arrivals,
    output: state.sizes.output * keep + traffic.outputTokens,
    completions: state.sizes.completions * keep + traffic.completions,
  };
  const meanPrompt = sizes.arrivals > 0 ? sizes.prompt / sizes.arrivals : state.meanPrompt;
  const meanOutput = sizes.completions > 0 ? sizes.output / sizes.completions : state.meanOutput;
  if (!state.initialized) {
    return {
      ...state,
      initialized: true,
      lastTime: now,
      requests: { level: requestRate, trend: 0 },
      promptTokens: { level: promptRate, trend: 0 },
      meanPrompt,
      meanOutput,
      sizes,
    };
  }
  return {
    ...state,
    lastTime: now,
    requests: holt(state.requests, requestRate, dt, config.level_halflife_s, config.trend_halflife_s),
    promptTokens: holt(state.promptTokens, promptRate, dt, config.level_halflife_s, config.trend_halflife_s),
    meanPrompt,
    meanOutput,
    sizes,
  };
}

// The planner's models live in their own modules; re-exported so callers import the policy in one place.
export { burstPeak, burstPlan, dispersionPValue, type Burst, type BurstWindows } from "./sla-bursts.ts";
export {
  decodeKvDemand,
  decodeKvHigh,
  decodeReplicas,
  decodeSpikeShare,
  erlangC,
  prefillReplicas,
  slaPerformance,
  type PoolPerformance,
} from "./sla-capacity.ts";
