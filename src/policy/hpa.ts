/**
 * `hpa`: the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) as a pure policy (autoscalers spec §2).
 *
 * Per pool and tick (`current` = the pool's `desired`, `min`/`max` = the pool's bounds):
 * 1. guards: `current = 0` with a non-zero min is "scaling disabled" (HPA never scales from zero);
 *    `current` outside `[min, max]` snaps to the bound;
 * 2. one proposal per metric, the max over them; if every metric is invalid, hold; if some are invalid
 *    and the proposal is below `current`, hold (never scale down on partial data);
 * 3. with `behavior`: stabilization (the recommendation is clamped between the min over the up window
 *    and the max over the down window, both including itself), then the scale-up/scale-down policies
 *    over the scale-event log, then `[min, max]`; with `behavior: null`: the legacy path (max over the
 *    downscale window, at most `max(2·current, 4)` per tick).
 *
 * Metrics (`metrics: [...]`, one of):
 * - `{ type: "pods", metric, target_average_value }`: a per-replica gauge averaged over READY replicas;
 * - `{ type: "resource", metric, target_utilization }`: a per-replica percentage (default
 *   `gpu_utilization`) against a target percentage; missing replicas count as `max(100, target)` on a
 *   scale-down, as HPA does for CPU;
 * - `{ type: "external", metric, target_type: "value" | "average_value", target }`: a total from
 *   `observation.external`.
 *
 * Readiness (spec §2.4): `starting` replicas are Pending (UNREADY), `ready` replicas without the metric
 * are MISSING, `draining` replicas are IGNORED. Missing replicas never block scale-up and are counted
 * at target on scale-down; unready ones count as 0 on scale-up.
 *
 * Scale to zero: the effective minimum is `max(1, pool.min)`, except that a pool with `min: 0` and at
 * least one external metric may go to 0 (HPAScaleToZero) and come back with `ceil(ratio)`.
 *
 * Per-pool overrides: `pools: { <pool>: { metrics?, tolerance?, behavior?, downscale_stabilization_s? } }`.
 * Each given key replaces the top-level one for that pool wholesale (a `behavior` given there is a full
 * behavior with its own defaults, `behavior: null` selects the legacy path for that pool).
 *
 * Corrections of upstream defects (defaults; spec §2.3): an External `Value` metric with no ready
 * replica holds `current` (upstream computes `ceil(ratio · 0) = 0`, a scale-down); an External
 * `AverageValue` inside the tolerance holds `current` rather than the pod count (which differ while a
 * replica is being created); stabilization clamps `current` into the window bounds as current
 * Kubernetes does (the older direction-picking form could scale down on a scale-up tick).
 */
import { z } from "zod";
import { UsageError } from "../errors.ts";
import {
  applyBehaviorLimits,
  type BehaviorLimit,
  eventLog,
  eventLogAppend,
  type EventLogState,
  legacyScaleUpLimit,
  longestPeriod,
} from "./primitives/rate-limit.ts";
import {
  ceilReplicas,
  groupReplicas,
  readinessAdjustedReplicas,
  replicasForTotal,
  type Tolerance,
  withinTolerance,
} from "./primitives/recommender.ts";
import { recWindow, recWindowAppend, recWindowBest, type RecWindowState } from "./primitives/window-best.ts";
import type { Observation, Policy, PoolDecision, PoolRole, PoolView, ReplicaView } from "./types.ts";
import { activeCount, clamp, GAUGES, replicasIn } from "./types.ts";

const scalingPolicySchema = z.strictObject({
  type: z.enum(["pods", "percent"]),
  value: z.number().positive(),
  /** Seconds the policy's budget spans (Kubernetes allows up to 1800). */
  period_s: z.number().positive().max(1800).default(15),
});

function scalingRulesSchema(defaults: {
  stabilization_window_s: number;
  policies: z.output<typeof scalingPolicySchema>[];
}) {
  return z.strictObject({
    /** Seconds of past recommendations this direction must agree with before moving. */
    stabilization_window_s: z.number().min(0).max(3600).default(defaults.stabilization_window_s),
    select_policy: z.enum(["max", "min", "disabled"]).default("max"),
    policies: z.array(scalingPolicySchema).min(1).default(defaults.policies),
    /** Tolerance for this direction (KEP-4951); null = the top-level `tolerance`. */
    tolerance: z.number().min(0).nullable().default(null),
  });
}

/** `behavior` with the defaults of `apis/autoscaling/v2/defaults.go` (spec §2.2). */
export const hpaBehaviorSchema = z.strictObject({
  scale_up: scalingRulesSchema({
    stabilization_window_s: 0,
    policies: [
      { type: "pods", value: 4, period_s: 15 },
      { type: "percent", value: 100, period_s: 15 },
    ],
  }).prefault({}),
  scale_down: scalingRulesSchema({
    stabilization_window_s: 300,
    policies: [{ type: "percent", value: 100, period_s: 15 }],
  }).prefault({}),
});
export type HpaBehavior = z.output<typeof hpaBehaviorSchema>;

const podsMetricSchema = z.strictObject({
  type: z.literal("pods"),
  /** A per-replica gauge name (see GAUGES). */
  metric: z.string().min(1).default(GAUGES.concurrent),
  target_average_value: z.number().positive().default(16),
});

const resourceMetricSchema = z.strictObject({
  type: z.literal("resource"),
  /** A per-replica percentage gauge, 0..100. */
  metric: z.string().min(1).default(GAUGES.gpuUtilization),
  /** Target percentage (HPA's averageUtilization). */
  target_utilization: z.number().positive().default(80),
});

const externalMetricSchema = z.strictObject({
  type: z.literal("external"),
  /** A key of `observation.external`; no default: it names something only the user knows. */
  metric: z.string().min(1),
  /** `value`: the total should equal `target`; `average_value`: the total per replica should. */
  target_type: z.enum(["value", "average_value"]).default("average_value"),
  target: z.number().positive(),
});

export const hpaMetricSchema = z.discriminatedUnion("type", [
  podsMetricSchema,
  resourceMetricSchema,
  externalMetricSchema,
]);
export type HpaMetric = z.output<typeof hpaMetricSchema>;

/** Keys a pool may override; their top-level defaults. */
const hpaPoolShape = {
  /** Default: GPU utilization at 80 %, the analogue of HPA's CPU-at-80 % default. */
  metrics: z
    .array(hpaMetricSchema)
    .min(1)
    .default([{ type: "resource", metric: GAUGES.gpuUtilization, target_utilization: 80 }]),
  /** Symmetric dead band on the usage ratio (the controller flag, 10 %). */
  tolerance: z.number().min(0).default(0.1),
  /** null = the legacy path of a HorizontalPodAutoscaler without `behavior`. */
  behavior: hpaBehaviorSchema.nullable().prefault({}),
  /** Downscale stabilization of the legacy path (`--horizontal-pod-autoscaler-downscale-stabilization`). */
  downscale_stabilization_s: z.number().min(0).default(300),
};

type WithoutDefault<T> =
  T extends z.ZodDefault<infer Inner> ? Inner : T extends z.ZodPrefault<infer Inner> ? Inner : T;

/**
 * A strict object of the same keys, all optional and without defaults, for per-pool overrides: zod's
 * `.partial()` keeps inner defaults, which would make every override look like it sets every key.
 */
export function poolOverridesSchema<
  Shape extends Record<string, z.ZodDefault<z.ZodType> | z.ZodPrefault<z.ZodType>>,
>(shape: Shape) {
  const optional = Object.fromEntries(
    Object.entries(shape).map(([key, schema]) => [key, schema.unwrap().optional()]),
  ) as { [K in keyof Shape]: z.ZodOptional<WithoutDefault<Shape[K]>> };
  return z.strictObject(optional);
}

export const hpaConfigSchema = z.strictObject({
  /** Seconds between decisions (`--horizontal-pod-autoscaler-sync-period`). */
  interval_s: z.number().positive().default(15),
  ...hpaPoolShape,
  /** Per-pool overrides of the keys above, by pool name. */
  pools: z.record(z.string(), poolOverridesSchema(hpaPoolShape)).default({}),
});
export type HpaConfig = z.output<typeof hpaConfigSchema>;

/** The settings one pool runs with after its overrides. */
export interface HpaPoolConfig {
  readonly metrics: readonly HpaMetric[];
  readonly tolerance: number;
  readonly behavior: HpaBehavior | null;
  readonly downscale_stabilization_s: number;
}

export function resolveHpaPoolConfig(config: HpaConfig, pool: string): HpaPoolConfig {
  const override = config.pools[pool];
  return {
    metrics: override?.metrics ?? config.metrics,
    tolerance: override?.tolerance ?? config.tolerance,
    behavior: override?.behavior !== undefined ? override.behavior : config.behavior,
    downscale_stabilization_s: override?.downscale_stabilization_s ?? config.downscale_stabilization_s,
  };
}

/** Per pool: past recommendations (two monotonic windows) and past scale events. Plain JSON. */
export interface HpaPoolState {
  /** Min over the scale-up stabilization window. */
  readonly upRecommendations: RecWindowState;
  /** Max over the scale-down stabilization window (the legacy downscale window without behavior). */
  readonly downRecommendations: RecWindowState;
  readonly upEvents: EventLogState;
  readonly downEvents: EventLogState;
}

export interface HpaState {
  readonly pools: Readonly<Record<string, HpaPoolState>>;
}

export function initialHpaPoolState(config: HpaPoolConfig): HpaPoolState {
  const behavior = config.behavior;
  return {
    upRecommendations: recWindow("min", behavior?.scale_up.stabilization_window_s ?? 0),
    downRecommendations: recWindow(
      "max",
      behavior?.scale_down.stabilization_window_s ?? config.downscale_stabilization_s,
    ),
    upEvents: eventLog(),
    downEvents: eventLog(),
  };
}

/** The per-direction tolerance of a pool: behavior's own, else the symmetric one. */
export function hpaTolerance(config: HpaPoolConfig): Tolerance {
  return {
    up: config.behavior?.scale_up.tolerance ?? config.tolerance,
    down: config.behavior?.scale_down.tolerance ?? config.tolerance,
  };
}

/** `max(1, pool.min)`, or 0 when the pool allows it and an external metric can wake it (HPAScaleToZero). */
export function hpaMinReplicas(pool: PoolView, metrics: readonly HpaMetric[]): number {
  if (pool.min === 0 && metrics.some((metric) => metric.type === "external")) return 0;
  return Math.max(1, pool.min);
}

export type MetricProposal =
  | { readonly ok: true; readonly replicas: number; readonly detail: string }
  | { readonly ok: false; readonly error: string };

const fmt = (value: number): string => (Number.isInteger(value) ? String(value) : value.toFixed(2));

function gaugeOf(name: string): (replica: ReplicaView) => number | undefined {
  return (replica) => replica.metrics?.gauges[name];
}

/** One metric's replica proposal (HPA `computeReplicasForMetric`), or why the metric is invalid. */
export function computeReplicasForMetric(
  metric: HpaMetric,
  pool: PoolView,
  observation: Observation,
  current: number,
  tolerance: Tolerance,
): MetricProposal {
  if (metric.type === "external") return externalProposal(metric, pool, observation, current, tolerance);
  const utilization = metric.type === "resource";
  const target = utilization ? metric.target_utilization : metric.target_average_value;
  const label = `${metric.type} ${metric.metric}`;
  const grouped = groupReplicas(pool.replicas, gaugeOf(metric.metric));
  const result = readinessAdjustedReplicas({
    ...grouped,
    target,
    missingOnScaleDown: utilization ? Math.max(100, target) : target,
    current,
    tolerance,
  });
  if (result === undefined) {
    const counts = `${grouped.unready} starting, ${grouped.missing} unscraped, ${grouped.ignored} draining`;
    return { ok: false, error: `${label}: no ready replica reports it (${counts})` };
  }
  const mean = result.ratio * target;
  const band = `[${fmt(1 - tolerance.down)}, ${fmt(1 + tolerance.up)}]`;
  const adjusted =
    result.adjustedRatio === undefined
      ? ""
      : `, adjusted ${result.adjustedRatio.toFixed(2)} (${result.note})`;
  const inside = withinTolerance(result.ratio, tolerance) ? " inside " : " outside ";
  return {
    ok: true,
    replicas: result.replicas,
    detail: `${label} mean ${fmt(mean)} / ${fmt(target)}: ratio ${result.ratio.toFixed(2)}${inside}${band}${adjusted} → ${result.replicas}`,
  };
}

function externalProposal(
  metric: z.output<typeof externalMetricSchema>,
  pool: PoolView,
  observation: Observation,
  current: number,
  tolerance: Tolerance,
): MetricProposal {
  const label = `external ${metric.metric}`;
  const value = observation.external[metric.metric];
  if (value === undefined || !Number.isFinite(value)) return { ok: false, error: `${label}: not observed` };
  if (metric.target_type === "value") {
    const ratio = value / metric.target;
    const head = `${label} ${fmt(value)} / ${fmt(metric.target)}: ratio ${ratio.toFixed(2)}`;
    if (current === 0) {
      const replicas = ceilReplicas(ratio);
      return { ok: true, replicas, detail: `${head}, from zero → ${replicas}` };
    }
    if (withinTolerance(ratio, tolerance)) {
      return { ok: true, replicas: current, detail: `${head} within tolerance` };
    }
    const ready = replicasIn(pool, "ready").length;
    if (ready === 0) return { ok: true, replicas: current, detail: `${head}, no ready replica: hold` };
    const replicas = ceilReplicas(ratio * ready);
    return { ok: true, replicas, detail: `${head} × ${ready} ready → ${replicas}` };
  }
  const counted = activeCount(pool);
  const ratio = value / (metric.target * counted);
  const head = `${label} ${fmt(value)} / (${fmt(metric.target)} × ${counted}): ratio ${counted > 0 ? ratio.toFixed(2) : "∞"}`;
  if (counted > 0 && withinTolerance(ratio, tolerance)) {
    return { ok: true, replicas: current, detail: `${head} within tolerance` };
  }
  const replicas = replicasForTotal(value, metric.target);
  return { ok: true, replicas, detail: `${head} → ${replicas}` };
}

/**
 * HPA stabilization with behaviors: the recommendation is `current` clamped into
 * [min over the up window, max over the down window], both windows including `desired`, which is then
 * remembered. Upward it waits until every recent recommendation was higher; downward until every one
 * was lower.
 */
export function stabilizeRecommendation(args: {
  readonly current: number;
  readonly desired: number;
  readonly now: number;
  readonly up: RecWindowState;
  readonly down: RecWindowState;
}): { readonly replicas: number; readonly up: RecWindowState; readonly down: RecWindowState } {
  const { current, desired, now } = args;
  const upBound = Math.min(desired, recWindowBest(args.up, now) ?? desired);
  const downBound = Math.max(desired, recWindowBest(args.down, now) ?? desired);
  return {
    replicas: clamp(current, upBound, downBound),
    up: recWindowAppend(args.up, now, desired),
    down: recWindowAppend(args.down, now, desired),
  };
}

/** Legacy stabilization (behavior unset): the max recommendation over the downscale window. */
export function stabilizeLegacy(args: {
  readonly desired: number;
  readonly now: number;
  readonly down: RecWindowState;
}): { readonly replicas: number; readonly down: RecWindowState } {
  const replicas = Math.max(args.desired, recWindowBest(args.down, args.now) ?? args.desired);
  return { replicas, down: recWindowAppend(args.down, args.now, args.desired) };
}

/** Legacy rate and bounds: `clamp(stabilized, min, min(max, max(2·current, 4)))`. */
export function normalizeLegacy(current: number, stabilized: number, min: number, max: number): number {
  return clamp(stabilized, min, Math.min(max, legacyScaleUpLimit(current)));
}

function limitNote(
  limitedBy: BehaviorLimit | undefined,
  limit: number | undefined,
  min: number,
  max: number,
): string {
  if (limitedBy === "scaleUp policy") return ` (scaleUp policy cap ${limit})`;
  if (limitedBy === "scaleDown policy") return ` (scaleDown policy floor ${limit})`;
  if (limitedBy === "max replicas") return ` (max ${max})`;
  if (limitedBy === "min replicas") return ` (min ${min})`;
  return "";
}

interface PoolOutcome {
  readonly desired: number;
  readonly state: HpaPoolState;
  readonly reason: string;
}

function recordScaleEvent(
  state: HpaPoolState,
  behavior: HpaBehavior | null,
  now: number,
  from: number,
  to: number,
): HpaPoolState {
  if (behavior === null || to === from) return state;
  const retention = Math.max(longestPeriod(behavior.scale_up), longestPeriod(behavior.scale_down));
  if (to > from) return { ...state, upEvents: eventLogAppend(state.upEvents, now, to - from, retention) };
  return { ...state, downEvents: eventLogAppend(state.downEvents, now, from - to, retention) };
}

/** One pool's HPA reconcile (spec §2.3). */
export function decideHpaPool(
  pool: PoolView,
  observation: Observation,
  config: HpaPoolConfig,
  previous: HpaPoolState,
): PoolOutcome {
  const now = observation.now;
  const current = pool.desired;
  const min = hpaMinReplicas(pool, config.metrics);
  const max = pool.max;
  const name = pool.name;
  if (current === 0 && min !== 0) {
    return {
      desired: 0,
      state: previous,
      reason: `${name}: at 0 with min ${min}: scaling disabled (HPA does not scale from zero)`,
    };
  }
  if (current > max || current < min) {
    const desired = current > max ? max : min;
    const state = recordScaleEvent(previous, config.behavior, now, current, desired);
    return { desired, state, reason: `${name}: ${current} outside [${min}, ${max}] → ${desired}` };
  }

  const tolerance = hpaTolerance(config);
  let proposal: number | undefined;
  const details: string[] = [];
  const errors: string[] = [];
  for (const metric of config.metrics) {
    const result = computeReplicasForMetric(metric, pool, observation, current, tolerance);
    if (!result.ok) {
      errors.push(result.error);
      continue;
    }
    details.push(result.detail);
    if (proposal === undefined || result.replicas > proposal) proposal = result.replicas;
  }
  const metricsText = [...details, ...errors.map((error) => `invalid: ${error}`)].join("; ");
  if (proposal === undefined) {
    return {
      desired: current,
      state: previous,
      reason: `${name}: no valid metric (${metricsText}); hold ${current}`,
    };
  }
  if (errors.length > 0 && proposal < current) {
    return {
      desired: current,
      state: previous,
      reason: `${name}: ${metricsText}; proposal ${proposal} < ${current} refused while a metric is invalid; hold ${current}`,
    };
  }

  let state = previous;
  let desired: number;
  let tail: string;
  if (config.behavior === null) {
    const stabilized = stabilizeLegacy({ desired: proposal, now, down: state.downRecommendations });
    state = { ...state, downRecommendations: stabilized.down };
    desired = normalizeLegacy(current, stabilized.replicas, min, max);
    const cap = Math.min(max, legacyScaleUpLimit(current));
    tail = `stabilized ${stabilized.replicas}${stabilized.replicas > cap ? ` (legacy cap ${cap})` : ""}`;
  } else {
    const stabilized = stabilizeRecommendation({
      current,
      desired: proposal,
      now,
      up: state.upRecommendations,
      down: state.downRecommendations,
    });
    state = { ...state, upRecommendations: stabilized.up, downRecommendations: stabilized.down };
    const limited = applyBehaviorLimits({
      current,
      desired: stabilized.replicas,
      min,
      max,
      scaleUp: config.behavior.scale_up,
      scaleDown: config.behavior.scale_down,
      upEvents: state.upEvents,
      downEvents: state.downEvents,
      now,
    });
    desired = limited.replicas;
    tail = `stabilized ${stabilized.replicas}${limitNote(limited.limitedBy, limited.limit, min, max)}`;
  }
  state = recordScaleEvent(state, config.behavior, now, current, desired);
  return { desired, state, reason: `${name}: ${metricsText}; proposal ${proposal}, ${tail} → ${desired}` };
}

/** The HPA policy object (`createHpaPolicy`'s result). */
export type HpaPolicy = Policy<HpaState>;

export function createHpaPolicy(
  config: HpaConfig,
  pools: readonly { name: string; role: PoolRole }[],
): Policy<HpaState> {
  const known = pools.map((pool) => pool.name);
  for (const name of Object.keys(config.pools)) {
    if (!known.includes(name)) {
      throw new UsageError(`hpa: pools.${name}: no such pool (pools: ${known.join(", ") || "none"})`);
    }
  }
  const resolved = new Map(known.map((name) => [name, resolveHpaPoolConfig(config, name)]));
  return {
    name: "hpa",
    interval_s: config.interval_s,
    init: () => ({ pools: {} }),
    decide(observation, state) {
      const targets: Record<string, PoolDecision> = {};
      const reasons: string[] = [];
      const poolStates: Record<string, HpaPoolState> = { ...state.pools };
      for (const pool of observation.pools) {
        const poolConfig = resolved.get(pool.name) ?? resolveHpaPoolConfig(config, pool.name);
        const previous = state.pools[pool.name] ?? initialHpaPoolState(poolConfig);
        const outcome = decideHpaPool(pool, observation, poolConfig, previous);
        targets[pool.name] = { desired: outcome.desired };
        reasons.push(outcome.reason);
        poolStates[pool.name] = outcome.state;
      }
      return { decision: { targets, reasons }, state: { pools: poolStates } };
    },
  };
}
