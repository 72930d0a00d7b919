/**
 * `kpa`: the Knative Pod Autoscaler (autoscalers spec §3) as a pure policy: the decider (§3.4) over
 * stable and panic windows, the reconciler's bounds, and the scale-to-zero state machine (§3.5).
 *
 * Per pool and tick:
 * 1. collect: the pool's concurrency is the mean `concurrent_requests` of the ready replicas that
 *    could be scraped times the ready count (Knative extrapolates from a sample the same way), plus,
 *    where `gateway_queue` says so, the requests held at the gateway (`queue.dueBusy + noReplica`),
 *    which is what Knative's activator reports. With `metric: rps` the sample is the gateway's arrival
 *    rate. The sample is recorded into 1-s buckets of both windows; with `hold_samples` (default) it
 *    stands for every second since the previous tick, because this policy ticks every 2 s while
 *    Knative scrapes every second (recording one bucket in two would halve every average);
 * 2. aggregate: stable (60 s) and panic (6 s) `BucketMean`, or `BucketEWMA` with
 *    `aggregation: weighted_exponential`;
 * 3. decide: `ceil(window / target)` for both windows, bounded by the rate limits around the ready
 *    count; panic when the panic count reaches `panic_threshold_percentage` of ready, and while in
 *    panic never decrease; leave panic a stable window after the last over-threshold tick;
 *    `scale_down_delay_s` holds the max desired over that window; `activation_scale` is the least
 *    non-zero scale;
 * 4. bounds `[pool.min, pool.max]`, then scale to zero (only reachable with `pool.min = 0`): a pool
 *    Active for a stable window with nothing to do is marked Inactive (the activator takes the
 *    traffic); an Inactive pool goes to 0 after `max(grace, retention)`, or after `retention` once it
 *    has been in proxy mode for `grace`. A pool stuck Activating past `activation_timeout_s` gives up.
 *
 * Not modelled: the activator itself (the gateway queue plays its part), the immediate "poke" at
 * scale 0 (the next tick acts), initial-scale, and pod sampling error (every ready replica is read).
 *
 * Per-pool overrides: `pools: { <pool>: { <any key above except interval_s>?: value } }`; a given key
 * replaces the top-level one for that pool.
 */
import { z } from "zod";
import { UsageError } from "../errors.ts";
import { poolOverridesSchema } from "./hpa.ts";
import {
  bucketEwma,
  bucketMean,
  bucketWindow,
  bucketWindowIsEmpty,
  bucketWindowRecordSpan,
  type BucketWindowState,
} from "./primitives/bucket-window.ts";
import { knativeRateBounds } from "./primitives/rate-limit.ts";
import { replicasForTotal } from "./primitives/recommender.ts";
import { recWindow, recWindowAppend, recWindowBest, type RecWindowState } from "./primitives/window-best.ts";
import type { Observation, Policy, PoolDecision, PoolRole, PoolView } from "./types.ts";
import { GAUGES, replicasIn } from "./types.ts";

/** Keys a pool may override, with the `config-autoscaler` defaults (spec §3.3). */
const kpaPoolShape = {
  /** What to scale on: in-flight requests, or requests per second at the gateway. */
  metric: z.enum(["concurrency", "rps"]).default("concurrency"),
  /** Hard per-replica concurrency limit (`containerConcurrency`); 0 = unlimited. */
  container_concurrency: z.int().nonnegative().default(0),
  /** Per-replica concurrency target base when `container_concurrency` is 0. */
  container_concurrency_target_default: z.number().positive().default(100),
  /** Per-replica RPS target base for `metric: rps`. */
  requests_per_second_target_default: z.number().positive().default(200),
  /** The revision's `autoscaling.knative.dev/target` annotation; null = the defaults above. */
  target: z.number().positive().nullable().default(null),
  /** Fraction of the base a replica is run at (`container-concurrency-target-percentage`/100). */
  target_utilization: z.number().gt(0).max(1).default(0.7),
  /** Spare concurrency kept before the activator leaves the path; -1 = activator always in path. */
  target_burst_capacity: z
    .number()
    .refine((value) => value === -1 || value >= 0, "must be -1 (activator always in the path) or >= 0")
    .default(211),
  stable_window_s: z.number().min(6).max(3600).default(60),
  /** Panic window as a percentage of the stable window (10 % → 6 s). */
  panic_window_percentage: z.number().min(1).max(100).default(10),
  /** Panic when panic-window pods reach this percentage of ready pods. */
  panic_threshold_percentage: z.number().min(110).max(1000).default(200),
  max_scale_up_rate: z.number().gt(1).default(1000),
  max_scale_down_rate: z.number().gt(1).default(2),
  /** Seconds a lower desired count must persist before it is applied (max over the window). */
  scale_down_delay_s: z.number().min(0).max(3600).default(0),
  /** Whether a pool with `min: 0` may go to zero (otherwise its floor is 1). */
  enable_scale_to_zero: z.boolean().default(true),
  /** Time in proxy mode (activator in path) before the last replica may go. */
  scale_to_zero_grace_period_s: z.number().positive().default(30),
  /** Time the last replica is kept after the pool becomes Inactive. */
  scale_to_zero_pod_retention_period_s: z.number().min(0).default(0),
  /** Least non-zero scale (`autoscaling.knative.dev/activation-scale`); 1 = off. */
  activation_scale: z.int().min(1).default(1),
  /** Activating longer than this gives up to 0 (progress deadline 600 s + 30 s). */
  activation_timeout_s: z.number().positive().default(630),
  /** `linear` = BucketMean; `weighted_exponential` = BucketEWMA (both windows). */
  aggregation: z.enum(["linear", "weighted_exponential"]).default("linear"),
  /** Concurrency one activator covers (for the activator count in reasons). */
  activator_capacity: z.number().positive().default(100),
  /**
   * Whether gateway-held requests count as concurrency: `auto` = for prefill and mixed pools, not for
   * decode pools (a held request reaches decode only through prefill).
   */
  gateway_queue: z.enum(["auto", "include", "exclude"]).default("auto"),
  /** A tick's sample fills every 1-s bucket since the previous tick (see the module comment). */
  hold_samples: z.boolean().default(true),
};

export const kpaConfigSchema = z.strictObject({
  /** Seconds between decisions (Knative's decider tick). */
  interval_s: z.number().positive().default(2),
  ...kpaPoolShape,
  /** Per-pool overrides of the keys above, by pool name. */
  pools: z.record(z.string(), poolOverridesSchema(kpaPoolShape)).default({}),
});
export type KpaConfig = z.output<typeof kpaConfigSchema>;

/** The settings one pool runs with after its overrides. */
export type KpaPoolConfig = Omit<KpaConfig, "interval_s" | "pools">;

export function resolveKpaPoolConfig(config: KpaConfig, pool: string): KpaPoolConfig {
  const { interval_s: _interval, pools, ...shared } = config;
  const override = pools[pool] ?? {};
  const given = Object.fromEntries(Object.entries(override).filter(([, value]) => value !== undefined));
  return { ...shared, ...given };
}

/** What the decider needs (Knative's `DeciderSpec`). */
export interface KnativeDeciderSpec {
  /** Per-replica target of the metric. */
  readonly target: number;
  /** Per-replica capacity the target is a fraction of (for burst capacity). */
  readonly total: number;
  readonly maxScaleUpRate: number;
  readonly maxScaleDownRate: number;
  /** Panic when `dppc / ready ≥ panicThreshold` (2.0 = 200 %). */
  readonly panicThreshold: number;
  readonly stableWindow_s: number;
  readonly activationScale: number;
  readonly targetBurstCapacity: number;
  /** Whether the revision receives traffic; an unreachable one may scale down without a floor. */
  readonly reachable: boolean;
}

/**
 * Knative's target resolution: base `total` from containerConcurrency (or the default) or the RPS
 * default, replaced by the `target` annotation (capped at containerConcurrency when that is set);
 * `target = max(0.01, total · utilization)`.
 */
export function knativeMetricTarget(config: KpaPoolConfig): {
  readonly target: number;
  readonly total: number;
} {
  let total: number;
  if (config.metric === "rps") total = config.requests_per_second_target_default;
  else
    total =
      config.container_concurrency === 0
        ? config.container_concurrency_target_default
        : config.container_concurrency;
  if (config.target !== null) {
    total =
      config.metric === "concurrency" && config.container_concurrency !== 0
        ? Math.min(config.target, config.container_concurrency)
        : config.target;
  }
  return { target: Math.max(0.01, total * config.target_utilization), total };
}

export function knativeDeciderSpec(config: KpaPoolConfig): KnativeDeciderSpec {
  const { target, total } = knativeMetricTarget(config);
  return {
    target,
    total,
    maxScaleUpRate: config.max_scale_up_rate,
    maxScaleDownRate: config.max_scale_down_rate,
    panicThreshold: config.panic_threshold_percentage / 100,
    stableWindow_s: config.stable_window_s,
    activationScale: config.activation_scale,
    targetBurstCapacity: config.target_burst_capacity,
    reachable: true,
  };
}

/** Panic window: the stable window × percentage, rounded to whole seconds, at least 1 s. */
export function panicWindowSeconds(config: KpaPoolConfig): number {
  return Math.max(1, Math.round((config.stable_window_s * config.panic_window_percentage) / 100));
}

/** The decider's memory: when it last saw the panic threshold crossed, and the panic high-water mark. */
export interface KnativeDeciderState {
  readonly panicTime: number | null;
  readonly maxPanicPods: number;
}

/**
 * Knative restarts in panic when more than one pod is ready, holding the current scale until the
 * windows have history again (serving#2705).
 */
export function initialDeciderState(now: number, readyReplicas: number): KnativeDeciderState {
  return readyReplicas > 1
    ? { panicTime: now, maxPanicPods: readyReplicas }
    : { panicTime: null, maxPanicPods: 0 };
}

/**
 * Excess burst capacity: `floor(ready · total − TBC − panic)`; 0 when TBC is 0 and −1 when TBC is −1.
 * Negative means the activator stays in the request path.
 */
export function excessBurstCapacity(
  readyReplicas: number,
  total: number,
  targetBurstCapacity: number,
  panic: number,
): number {
  if (targetBurstCapacity === 0) return 0;
  if (targetBurstCapacity < 0) return -1;
  return Math.floor(readyReplicas * total - targetBurstCapacity - panic);
}

/** Activators needed to cover the pool's capacity plus the burst capacity (at least 2). */
export function activatorCount(
  readyReplicas: number,
  total: number,
  targetBurstCapacity: number,
  activatorCapacity: number,
): number {
  if (targetBurstCapacity === 0) return 2;
  const capacity = readyReplicas * total + Math.max(0, targetBurstCapacity);
  return Math.max(2, Math.ceil(capacity / activatorCapacity));
}

export interface KnativeScaleResult {
  readonly desired: number;
  readonly excessBurstCapacity: number;
  /** Pods the stable and panic windows ask for, before and after the rate bounds. */
  readonly dspc: number;
  readonly dppc: number;
  readonly desiredStable: number;
  readonly desiredPanic: number;
  readonly maxUp: number;
  readonly maxDown: number;
  readonly overThreshold: boolean;
  readonly panicking: boolean;
  readonly state: KnativeDeciderState;
}

/** Knative's decider `Scale(now)` (spec §3.4) over already aggregated stable and panic values. */
export function knativeScale(
  spec: KnativeDeciderSpec,
  input: {
    readonly now: number;
    readonly readyReplicas: number;
    readonly stable: number;
    readonly panic: number;
  },
  state: KnativeDeciderState,
): KnativeScaleResult {
  const { now, readyReplicas, stable, panic } = input;
  const ready = Math.max(1, readyReplicas);
  const { maxUp, maxDown } = knativeRateBounds(
    readyReplicas,
    spec.maxScaleUpRate,
    spec.maxScaleDownRate,
    spec.reachable,
  );
  const dspc = replicasForTotal(stable, spec.target);
  const dppc = replicasForTotal(panic, spec.target);
  let desiredStable = Math.min(Math.max(dspc, maxDown), maxUp);
  let desiredPanic = Math.min(Math.max(dppc, maxDown), maxUp);
  if (spec.activationScale > 1) {
    if (dspc > 0 && desiredStable < spec.activationScale) desiredStable = spec.activationScale;
    if (dppc > 0 && desiredPanic < spec.activationScale) desiredPanic = spec.activationScale;
  }
  const overThreshold = dppc / ready >= spec.panicThreshold;
  let { panicTime, maxPanicPods } = state;
  if (overThreshold) panicTime = now;
  else if (panicTime !== null && panicTime + spec.stableWindow_s < now) {
    panicTime = null;
    maxPanicPods = 0;
  }
  let desired = desiredStable;
  if (panicTime !== null) {
    desired = Math.max(desiredStable, desiredPanic);
    maxPanicPods = Math.max(maxPanicPods, desired);
    desired = maxPanicPods;
  }
  return {
    desired,
    excessBurstCapacity: excessBurstCapacity(readyReplicas, spec.total, spec.targetBurstCapacity, panic),
    dspc,
    dppc,
    desiredStable,
    desiredPanic,
    maxUp,
    maxDown,
    overThreshold,
    panicking: panicTime !== null,
    state: { panicTime, maxPanicPods },
  };
}

/** Knative's `applyBounds`: `[min, max]`, where a max of 0 or less means unbounded. */
export function applyKnativeBounds(min: number, max: number, desired: number): number {
  if (desired < min) return min;
  if (max > 0 && desired > max) return max;
  return desired;
}

/** The PodAutoscaler's Active condition: Unknown = activating, True = active, False = inactive. */
export type Activity = "activating" | "active" | "inactive";

export interface ScaleToZeroSpec {
  readonly enabled: boolean;
  readonly stableWindow_s: number;
  readonly gracePeriod_s: number;
  readonly retention_s: number;
  readonly activationTimeout_s: number;
}

export interface ActivityState {
  readonly activity: Activity;
  /** When `activity` last changed. */
  readonly activitySince_s: number;
  /** Since when the activator has been in the request path (proxy mode); null while serving directly. */
  readonly proxySince_s: number | null;
}

/**
 * Knative's `handleScaleToZero` for a bounded desired scale of 0: the scale to report (−1 = unknown)
 * and whether to apply it. An unapplied scale leaves the replicas as they are.
 */
export function handleScaleToZero(
  now: number,
  state: ActivityState,
  spec: ScaleToZeroSpec,
): { readonly scale: number; readonly apply: boolean; readonly note: string } {
  if (!spec.enabled) return { scale: 1, apply: true, note: "scale to zero disabled: 1" };
  if (state.activity === "activating") {
    const activating = now - state.activitySince_s;
    if (activating >= spec.activationTimeout_s) {
      return { scale: 0, apply: true, note: `activation timed out after ${activating.toFixed(0)}s: 0` };
    }
    return { scale: -1, apply: false, note: "activating: hold" };
  }
  if (state.activity === "active") {
    const activeFor = now - state.activitySince_s;
    if (activeFor >= spec.stableWindow_s) {
      return { scale: 0, apply: false, note: "idle: mark inactive, activator takes traffic" };
    }
    return { scale: 1, apply: true, note: `active ${activeFor.toFixed(0)}s < stable window: keep 1` };
  }
  const inactiveFor = now - state.activitySince_s;
  if (inactiveFor >= Math.max(spec.gracePeriod_s, spec.retention_s)) {
    return { scale: 0, apply: true, note: `inactive ${inactiveFor.toFixed(0)}s: 0` };
  }
  const proxyFor = state.proxySince_s === null ? 0 : now - state.proxySince_s;
  if (proxyFor >= spec.gracePeriod_s && inactiveFor >= spec.retention_s) {
    return {
      scale: 0,
      apply: true,
      note: `inactive ${inactiveFor.toFixed(0)}s, proxied ${proxyFor.toFixed(0)}s: 0`,
    };
  }
  return { scale: 0, apply: false, note: `inactive ${inactiveFor.toFixed(0)}s: waiting for grace period` };
}

/** Knative's `computeActiveCondition` (the table in kpa.go): the next Active condition. */
export function nextActivity(
  activity: Activity,
  want: number,
  readyReplicas: number,
  minReady: number,
): Activity {
  if (want === 0) return "inactive";
  if (readyReplicas < minReady) return want > 0 || activity !== "inactive" ? "activating" : activity;
  return want > 0 || activity !== "inactive" ? "active" : activity;
}

/** Per pool: both windows, the decider, the scale-down-delay window and the scale-to-zero machine. */
export interface KpaPoolState extends ActivityState {
  readonly stable: BucketWindowState;
  readonly panic: BucketWindowState;
  /** When the last sample was recorded (null before the first). */
  readonly lastSample_s: number | null;
  readonly decider: KnativeDeciderState;
  /** Max over the scale-down delay (disabled at 0 s). */
  readonly delay: RecWindowState;
}

export interface KpaState {
  readonly pools: Readonly<Record<string, KpaPoolState>>;
}

export function initialKpaPoolState(config: KpaPoolConfig, pool: PoolView, now: number): KpaPoolState {
  const ready = replicasIn(pool, "ready").length;
  const minReady = Math.max(1, pool.min);
  const activity: Activity = ready >= minReady ? "active" : pool.desired === 0 ? "inactive" : "activating";
  return {
    stable: bucketWindow(config.stable_window_s),
    panic: bucketWindow(panicWindowSeconds(config)),
    lastSample_s: null,
    decider: initialDeciderState(now, ready),
    delay: recWindow("max", config.scale_down_delay_s),
    activity,
    activitySince_s: now,
    proxySince_s: null,
  };
}

/** This tick's metric sample for a pool, or undefined when nothing could be read. */
export function kpaSample(
  pool: PoolView,
  observation: Observation,
  config: KpaPoolConfig,
): { readonly value: number; readonly detail: string } | undefined {
  if (config.metric === "rps") {
    const { window_s, arrivals } = observation.traffic;
    if (!(window_s > 0)) return undefined;
    const rps = arrivals / window_s;
    return { value: rps, detail: `rps ${rps.toFixed(2)}` };
  }
  const ready = replicasIn(pool, "ready");
  let sum = 0;
  let reporting = 0;
  for (const replica of ready) {
    const value = replica.metrics?.gauges[GAUGES.concurrent];
    if (value === undefined || !Number.isFinite(value)) continue;
    sum += value;
    reporting++;
  }
  const includeQueue =
    config.gateway_queue === "include" || (config.gateway_queue === "auto" && pool.role !== "decode");
  const queued = includeQueue ? observation.queue.dueBusy + observation.queue.noReplica : 0;
  const queueText = includeQueue ? ` + ${queued} queued` : "";
  if (ready.length === 0) return { value: queued, detail: `no ready replica${queueText}` };
  if (reporting === 0) {
    return queued > 0 ? { value: queued, detail: `ready replicas unscraped${queueText}` } : undefined;
  }
  const pods = (sum / reporting) * ready.length;
  const scaled = reporting < ready.length ? ` (${reporting}/${ready.length} scraped)` : "";
  return { value: pods + queued, detail: `concurrency ${pods.toFixed(1)}${scaled}${queueText}` };
}

interface PoolOutcome {
  readonly desired: number;
  readonly state: KpaPoolState;
  readonly reason: string;
}

const one = (value: number): string => (Number.isInteger(value) ? String(value) : value.toFixed(1));

/** One pool's KPA tick: collect, aggregate, decide, bound, scale to zero. */
export function decideKpaPool(
  pool: PoolView,
  observation: Observation,
  config: KpaPoolConfig,
  previous: KpaPoolState,
): PoolOutcome {
  const now = observation.now;
  const name = pool.name;
  const readyReplicas = replicasIn(pool, "ready").length;
  let state = previous;

  const sample = kpaSample(pool, observation, config);
  if (sample !== undefined) {
    const from = config.hold_samples && state.lastSample_s !== null ? state.lastSample_s : undefined;
    state = {
      ...state,
      stable: bucketWindowRecordSpan(state.stable, from, now, sample.value),
      panic: bucketWindowRecordSpan(state.panic, from, now, sample.value),
      lastSample_s: now,
    };
  }
  if (bucketWindowIsEmpty(state.stable, now)) {
    return { desired: pool.desired, state, reason: `${name}: no data yet; hold ${pool.desired}` };
  }

  const aggregate = config.aggregation === "weighted_exponential" ? bucketEwma : bucketMean;
  const stable = aggregate(state.stable, now);
  const panic = aggregate(state.panic, now);
  const spec = knativeDeciderSpec(config);
  const scaled = knativeScale(spec, { now, readyReplicas, stable, panic }, state.decider);
  state = { ...state, decider: scaled.state };
  const parts = [
    `${sample?.detail ?? "no sample"}; stable ${one(stable)} panic ${one(panic)} / target ${one(spec.target)}, ${readyReplicas} ready`,
    `pods ${scaled.dspc}/${scaled.dppc} within [${scaled.maxDown}, ${scaled.maxUp}] → ${scaled.desiredStable}/${scaled.desiredPanic}`,
  ];
  if (scaled.panicking) {
    const ratio = (scaled.dppc / Math.max(1, readyReplicas)).toFixed(2);
    parts.push(
      `panic (${ratio}× ready${scaled.overThreshold ? "" : ", below threshold"}, no decrease) → ${scaled.desired}`,
    );
  }

  let desired = scaled.desired;
  if (config.scale_down_delay_s > 0) {
    const delay = recWindowAppend(state.delay, now, desired);
    const delayed = recWindowBest(delay, now) ?? desired;
    if (delayed !== desired) parts.push(`scale-down delay holds ${delayed}`);
    state = { ...state, delay };
    desired = delayed;
  }

  const want = applyKnativeBounds(pool.min, pool.max, desired);
  if (want !== desired) parts.push(`bounds [${pool.min}, ${pool.max}] → ${want}`);
  const toZero =
    want === 0
      ? handleScaleToZero(now, state, {
          enabled: config.enable_scale_to_zero,
          stableWindow_s: config.stable_window_s,
          gracePeriod_s: config.scale_to_zero_grace_period_s,
          retention_s: config.scale_to_zero_pod_retention_period_s,
          activationTimeout_s: config.activation_timeout_s,
        })
      : { scale: want, apply: true, note: "" };
  if (toZero.note !== "") parts.push(toZero.note);

  const proxy =
    toZero.scale === 0 ||
    scaled.excessBurstCapacity < 0 ||
    (toZero.scale === -1 && state.activity === "inactive");
  const activity = nextActivity(state.activity, toZero.scale, readyReplicas, Math.max(1, pool.min));
  state = {
    ...state,
    activity,
    activitySince_s: activity === state.activity ? state.activitySince_s : now,
    proxySince_s: proxy ? (state.proxySince_s ?? now) : null,
  };
  const activators = activatorCount(
    readyReplicas,
    spec.total,
    spec.targetBurstCapacity,
    config.activator_capacity,
  );
  parts.push(
    `ebc ${scaled.excessBurstCapacity} (${proxy ? `proxy, ${activators} activators` : "serve"}), ${activity}`,
  );

  const final = toZero.apply ? toZero.scale : pool.desired;
  return { desired: final, state, reason: `${name}: ${parts.join("; ")} → ${final}` };
}

/** The KPA policy object (`createKpaPolicy`'s result). */
export type KpaPolicy = Policy<KpaState>;

export function createKpaPolicy(
  config: KpaConfig,
  pools: readonly { name: string; role: PoolRole }[],
): Policy<KpaState> {
  const known = pools.map((pool) => pool.name);
  for (const name of Object.keys(config.pools)) {
    if (!known.includes(name)) {
      throw new UsageError(`kpa: pools.${name}: no such pool (pools: ${known.join(", ") || "none"})`);
    }
  }
  const resolved = new Map(known.map((name) => [name, resolveKpaPoolConfig(config, name)]));
  return {
    name: "kpa",
    interval_s: config.interval_s,
    init: () => ({ pools: {} }),
    decide(observation, state) {
      const targets: Record<string, PoolDecision> = {};
      const reasons: string[] = [];
      const poolStates: Record<string, KpaPoolState> = { ...state.pools };
      for (const pool of observation.pools) {
        const poolConfig = resolved.get(pool.name) ?? resolveKpaPoolConfig(config, pool.name);
        const previous = state.pools[pool.name] ?? initialKpaPoolState(poolConfig, pool, observation.now);
        const outcome = decideKpaPool(pool, observation, poolConfig, previous);
        targets[pool.name] = { desired: outcome.desired };
        reasons.push(outcome.reason);
        poolStates[pool.name] = outcome.state;
      }
      return { decision: { targets, reasons }, state: { pools: poolStates } };
    },
  };
}
