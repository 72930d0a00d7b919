/**
 * The Kthena (formerly MatrixInfer) autoscaler as a pure `Policy` (autoscalers spec §4): per tick,
 * collect (§4.4, from the Observation) → recommend (§4.5) → panic / correct (§4.6) → actuate, in
 * three modes chosen by the config's target:
 * - homogeneous: one pool, or every pool given at creation independently (each with its own history);
 * - heterogeneous: several pools (types) scaled as one total T, split by the cost-ordered fill (§4.8);
 * - disaggregated: prefill/decode pools as roles, each recommended and corrected on its own, then
 *   repaired into the replica-ratio band (§4.9). If a non-fixed role has no signal, nothing moves.
 *
 * Metric collection from the Observation:
 * - pod metrics are read per replica from `replica.metrics` (gauges, raw counters, histograms as p95
 *   of the delta against this replica's snapshot ≥ 60 s old, kept in the state for 300 s); replicas
 *   `starting` are unready, `draining` ones are ignored; `current` is `pool.desired`;
 * - external metrics (source `external`) are `observation.external["<pool>/<name>"]` where present,
 *   else `observation.external[name]`; across heterogeneous pools the per-pool values are summed, or
 *   replica-weighted-averaged for names ending in _utilization/_usage/_ratio/_percent/_saturation.
 * By default a ready replica without metrics (scrape failed) or with a metric missing counts as
 * "missing" under HPA rules and restarts do not matter; `upstream_compat` reproduces upstream: one
 * summed map per pool, the pool's pod metrics dropped for the tick when any replica restarted or is
 * draining (deletionTimestamp), when any ready replica cannot be scraped, or when a pool is empty.
 */
import type {
  HistogramSnapshot,
  Observation,
  Policy,
  PoolDecision,
  PoolRole,
  PoolView,
  ReplicaMetrics,
} from "../types.ts";
import { dirname, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import type { PolicyContext } from "../registry.ts";
import { correct, initialCorrectionState } from "./correct.ts";
import type { CorrectionState } from "./correct.ts";
import { loadKthenaPolicyFile, metricBinding, parseKthenaConfig } from "./config.ts";
import type { KthenaConfig, KthenaConfigInput, KthenaMetric, MetricBinding } from "./config.ts";
import { aggregateExternal, distribute, scalingOrder } from "./optimizer.ts";
import type { ExternalSample, OptimizerParam } from "./optimizer.ts";
import { enforceRoleRatio } from "./ratio.ts";
import type { RoleBounds } from "./ratio.ts";
import { fmt, recommend } from "./recommend.ts";
import type { MetricValues, Recommendation } from "./recommend.ts";

export interface KthenaPoolSpec {
  readonly name: string;
  readonly role: PoolRole;
}

/** Histograms of one replica at one tick, tagged with its lifetime (a restart resets the counts). */
/**
 * The counts of a histogram kept as a baseline. Bucket bounds are not kept: the current scrape has
 * them, and its last bound (+Infinity) would not survive JSON.
 */
export interface HistogramCounts {
  readonly cumulative: readonly number[];
  readonly count: number;
}

export interface ReplicaHistograms {
  readonly epoch: string;
  readonly histograms: Readonly<Record<string, HistogramCounts>>;
}

export interface HistogramFrame {
  readonly t: number;
  /** By "<pool>/<replica id>". */
  readonly replicas: Readonly<Record<string, ReplicaHistograms>>;
}

/** Plain JSON: per-unit correction histories and the histogram snapshots of the last 300 s. */
export interface KthenaState {
  readonly units: Readonly<Record<string, CorrectionState>>;
  readonly histograms: readonly HistogramFrame[];
}

/** Upstream's histogram window: compare against a snapshot at least this old (s)... */
export const HISTOGRAM_FRESH_S = 60;
/** ...and keep snapshots this long (s). */
export const HISTOGRAM_KEEP_S = 300;
/** Upstream's fixed latency quantile. */
export const HISTOGRAM_PERCENTILE = 95;

/**
 * p-quantile of the observations between `past` and `now` (Kthena `QuantileInDiff`): the rank-th
 * observation, linearly interpolated inside its bucket, the +Inf bucket's bound taken as twice the
 * previous bound. 0 when nothing new was observed; undefined when the histograms are inconsistent
 * (a decreasing count or different bucket layouts).
 */
export function quantileInDelta(
  percentile: number,
  now: HistogramSnapshot,
  past: HistogramCounts | undefined,
): number | undefined {
  const total = now.count - (past?.count ?? 0);
  if (total < 0) return undefined;
  if (total === 0) return 0;
  if (past !== undefined && past.cumulative.length !== now.cumulative.length) return undefined;
  const rank = Math.ceil((total * percentile) / 100);
  let low = 0;
  let lastHigh = 0;
  for (let index = 0; index < now.le.length; index++) {
    const highRank = now.cumulative[index]! - (past?.cumulative[index] ?? 0);
    if (highRank < lastHigh) return undefined;
    const inBucket = highRank - lastHigh;
    const bound = now.le[index]!;
    const high = bound === Infinity ? low * 2 : bound;
    if (inBucket > 0 && rank <= highRank) return high - ((highRank - rank) * (high - low)) / inBucket;
    low = high;
    lastHigh = highRank;
  }
  return undefined;
}

interface ResolvedMetric {
  readonly name: string;
  readonly target: number;
  readonly external: boolean;
  readonly binding: MetricBinding | undefined;
}

function resolveMetrics(metrics: readonly KthenaMetric[]): ResolvedMetric[] {
  return metrics.map((metric) => ({
    name: metric.name,
    target: metric.target_value,
    external: metric.source === "external",
    binding: metric.source === "pod" ? metricBinding(metric.pod_metric ?? metric.name) : undefined,
  }));
}

/** What one pool yielded this tick. */
interface Collected {
  /** Default: one entry per ready replica; upstream: one summed map (empty when the pool was skipped). */
  readonly ready: MetricValues[];
  readonly unready: number;
  readonly note: string;
}

interface CollectContext {
  readonly compat: boolean;
  readonly past: HistogramFrame | undefined;
  /** Histogram snapshots taken this tick, filled by `collect`. */
  readonly frame: Record<string, ReplicaHistograms>;
}

function epochOf(replica: { createdAt_s: number; restarts: number }): string {
  return `${replica.createdAt_s}/${replica.restarts}`;
}

/** One replica's value of one metric: a number, undefined (missing) or "error" (inconsistent histogram). */
function readMetric(
  metrics: ReplicaMetrics,
  binding: MetricBinding,
  past: ReplicaHistograms | undefined,
  epoch: string,
  compat: boolean,
): number | undefined | "error" {
  if (binding.kind === "gauge") {
    for (const key of binding.keys) {
      const value = metrics.gauges[key];
      if (value !== undefined) return value * binding.scale;
    }
    // concurrent_requests where an engine only exposes its two parts.
    if (binding.keys[0] === "concurrent_requests") {
      const running = metrics.gauges.num_requests_running;
      const waiting = metrics.gauges.num_requests_waiting;
      if (running !== undefined && waiting !== undefined) return running + waiting;
    }
    return undefined;
  }
  if (binding.kind === "counter") {
    for (const key of binding.keys) {
      const value = metrics.counters[key];
      if (value !== undefined) return value * binding.scale;
    }
    return undefined;
  }
  const key = binding.keys[0]!;
  const now = metrics.histograms[key];
  if (now === undefined) return undefined;
  const before = past !== undefined && past.epoch === epoch ? past.histograms[key] : undefined;
  let value = quantileInDelta(HISTOGRAM_PERCENTILE, now, before);
  // A counter reset we did not see as a restart: upstream errors; we fall back to the whole lifetime.
  if (value === undefined && !compat) value = quantileInDelta(HISTOGRAM_PERCENTILE, now, undefined);
  return value === undefined ? "error" : value * binding.scale;
}

function collect(pool: PoolView, metrics: readonly ResolvedMetric[], context: CollectContext): Collected {
  const podMetrics = metrics.filter((metric) => metric.binding !== undefined);
  const entries: Record<string, number>[] = [];
  let unready = 0;
  let unscraped = 0;
  let problem: string | undefined;
  if (context.compat) {
    if (pool.replicas.length === 0) problem = "no replicas (pod list is empty)";
    for (const replica of pool.replicas) {
      if (problem !== undefined) break;
      if (replica.phase === "draining") problem = `replica ${replica.id} is terminating`;
      else if (replica.restarts > 0) problem = `replica ${replica.id} has restarted`;
      else if (replica.phase === "ready" && replica.metrics === undefined)
        problem = `replica ${replica.id} could not be scraped`;
    }
  }
  for (const replica of pool.replicas) {
    if (problem !== undefined) break;
    if (replica.phase === "draining") continue;
    if (replica.phase === "starting") {
      unready++;
      continue;
    }
    const entry: Record<string, number> = {};
    entries.push(entry);
    if (replica.metrics === undefined) {
      unscraped++;
      continue;
    }
    const key = `${pool.name}/${replica.id}`;
    const epoch = epochOf(replica);
    const past = context.past?.replicas[key];
    const histograms: Record<string, HistogramCounts> = {};
    for (const metric of podMetrics) {
      const binding = metric.binding!;
      const value = readMetric(replica.metrics, binding, past, epoch, context.compat);
      if (binding.kind === "histogram") {
        const snapshot = replica.metrics.histograms[binding.keys[0]!];
        if (snapshot !== undefined) histograms[binding.keys[0]!] = copyHistogram(snapshot);
      }
      if (value === "error") {
        // Upstream drops the whole pool for the tick; by default only this value is missing.
        if (context.compat) {
          problem = `replica ${replica.id}: ${metric.name} histogram went backwards`;
          break;
        }
        continue;
      }
      if (value !== undefined) entry[metric.name] = value;
    }
    if (Object.keys(histograms).length > 0) context.frame[key] = { epoch, histograms };
  }
  if (problem !== undefined) return { ready: [{}], unready: 0, note: `pod metrics skipped: ${problem}` };
  const ready = entries.length;
  const note = `${ready} ready${unscraped > 0 ? ` (${unscraped} unscraped)` : ""}, ${unready} starting`;
  if (!context.compat) return { ready: entries, unready, note };
  const summed: Record<string, number> = {};
  for (const entry of entries)
    for (const [name, value] of Object.entries(entry)) summed[name] = (summed[name] ?? 0) + value;
  return { ready: [summed], unready, note };
}

function copyHistogram(snapshot: HistogramSnapshot): HistogramCounts {
  return { cumulative: [...snapshot.cumulative], count: snapshot.count };
}

/** External values for `metrics` seen from `pools` (summed / weighted across several pools, spec §4.8). */
function externalFor(
  observation: Observation,
  metrics: readonly ResolvedMetric[],
  pools: readonly PoolView[],
): MetricValues {
  const out: Record<string, number> = {};
  for (const metric of metrics) {
    if (!metric.external) continue;
    const samples: ExternalSample[] = [];
    for (const pool of pools) {
      const value = observation.external[`${pool.name}/${metric.name}`];
      if (value !== undefined) samples.push({ value, replicas: pool.desired });
    }
    const value = aggregateExternal(metric.name, samples) ?? observation.external[metric.name];
    if (value !== undefined && Number.isFinite(value)) out[metric.name] = value;
  }
  return out;
}

function targetsOf(metrics: readonly ResolvedMetric[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const metric of metrics) out[metric.name] = metric.target;
  return out;
}

function describe(recommendation: Recommendation): string {
  const parts = recommendation.metrics.map(
    (metric) => `${metric.note} → ${metric.desired === undefined ? "skipped" : metric.desired}`,
  );
  if (recommendation.note !== "") parts.push(recommendation.note);
  return parts.join("; ");
}

type Plan =
  | { readonly kind: "homogeneous"; readonly pools: readonly string[]; readonly note: string }
  | { readonly kind: "heterogeneous"; readonly pools: readonly string[] }
  | { readonly kind: "disaggregated"; readonly roles: Readonly<Record<string, string>> };

/** Matches the config's target to the pools given at creation; throws when it cannot. */
function planFor(config: KthenaConfig, pools: readonly KthenaPoolSpec[]): Plan {
  const names = pools.map((pool) => pool.name);
  const target = config.target;
  const byNameOrRole = (key: string): string | undefined => {
    if (names.includes(key)) return key;
    const withRole = pools.filter((pool) => pool.role === key);
    return withRole.length === 1 ? withRole[0]!.name : undefined;
  };
  if (target.kind === "homogeneous") {
    if (target.role !== undefined) {
      const pool = byNameOrRole(target.role);
      if (pool === undefined) {
        throw new UsageError(
          `kthena: role target "${target.role}" matches no pool by name or role (pools: ${names.join(", ")})`,
        );
      }
      return { kind: "homogeneous", pools: [pool], note: `role ${target.role} → pool ${pool}` };
    }
    if (target.pool !== undefined && names.includes(target.pool))
      return { kind: "homogeneous", pools: [target.pool], note: "" };
    const note =
      target.pool === undefined || target.pool === ""
        ? "every pool independently"
        : `target "${target.pool}" is not a pool here: every pool independently`;
    return { kind: "homogeneous", pools: names, note };
  }
  if (target.kind === "heterogeneous") {
    const params = target.params.map((param) => param.pool);
    if (params.every((pool) => names.includes(pool))) return { kind: "heterogeneous", pools: params };
    if (params.every((pool) => !names.includes(pool)) && params.length === names.length) {
      return { kind: "heterogeneous", pools: names };
    }
    throw new UsageError(
      `kthena: heterogeneous params name ${params.join(", ")} but the pools are ${names.join(", ")} ` +
        `(name each pool, or give exactly one param per pool in pool order)`,
    );
  }
  const roles: Record<string, string> = {};
  for (const role of Object.keys(target.roles).sort()) {
    const pool = byNameOrRole(role);
    if (pool === undefined)
      throw new UsageError(
        `kthena: role "${role}" matches no pool by name or role (pools: ${names.join(", ")})`,
      );
    roles[role] = pool;
  }
  return { kind: "disaggregated", roles };
}

/**
 * Keeps the frames younger than HISTOGRAM_KEEP_S, plus the newest older one so that a baseline at
 * least HISTOGRAM_FRESH_S old exists even when ticks are further apart than the keep window.
 */
function nextFrames(
  frames: readonly HistogramFrame[],
  now: number,
  frame: Record<string, ReplicaHistograms>,
): HistogramFrame[] {
  let oldest: HistogramFrame | undefined;
  for (const entry of frames) if (entry.t <= now - HISTOGRAM_KEEP_S) oldest = entry;
  const kept = frames.filter((entry) => entry.t > now - HISTOGRAM_KEEP_S || entry === oldest);
  kept.push({ t: now, replicas: frame });
  return kept;
}

/** The newest frame at least HISTOGRAM_FRESH_S old at `now`. */
function pastFrame(frames: readonly HistogramFrame[], now: number): HistogramFrame | undefined {
  let found: HistogramFrame | undefined;
  for (const frame of frames) if (frame.t <= now - HISTOGRAM_FRESH_S) found = frame;
  return found;
}

/**
 * Builds the Kthena policy for the given pools. `config` is our snake_case config (parsed here, so
 * defaults apply) or the result of `loadKthenaPolicyText`. Throws when the target matches no pool.
 */
export function createKthenaPolicy(
  input: KthenaConfigInput | KthenaConfig,
  pools: readonly KthenaPoolSpec[],
): Policy<KthenaState> {
  const config = parseKthenaConfig(input);
  const plan = planFor(config, pools);
  const compat = config.upstream_compat;
  const tolerance = config.tolerance_percent / 100;
  const behavior = config.behavior;
  const topMetrics = resolveMetrics(config.metrics);
  const roleMetrics: Record<string, ResolvedMetric[]> = {};
  if (config.target.kind === "disaggregated") {
    for (const [role, spec] of Object.entries(config.target.roles)) {
      roleMetrics[role] = spec.metrics === undefined ? topMetrics : resolveMetrics(spec.metrics);
    }
  }
  const usesHistograms = [...topMetrics, ...Object.values(roleMetrics).flat()].some(
    (metric) => metric.binding?.kind === "histogram",
  );
  const unitKeys =
    plan.kind === "homogeneous"
      ? plan.pools.map((pool) => `pool:${pool}`)
      : plan.kind === "heterogeneous"
        ? ["heterogeneous"]
        : Object.keys(plan.roles).map((role) => `role:${role}`);
  const label = `kthena ${config.name}`;

  return {
    name: "kthena",
    interval_s: config.interval_s,
    init(): KthenaState {
      const units: Record<string, CorrectionState> = {};
      for (const key of unitKeys) units[key] = initialCorrectionState(behavior);
      return { units, histograms: [] };
    },
    decide(observation, state) {
      const now = observation.now;
      const byName = new Map(observation.pools.map((pool) => [pool.name, pool]));
      const context: CollectContext = { compat, past: pastFrame(state.histograms, now), frame: {} };
      const units: Record<string, CorrectionState> = { ...state.units };
      const targets: Record<string, PoolDecision> = {};
      const reasons: string[] = [];
      const unitState = (key: string): CorrectionState => units[key] ?? initialCorrectionState(behavior);

      /** recommend → correct for one unit; undefined on skip (reason already pushed). */
      const scaleUnit = (
        key: string,
        what: string,
        current: number,
        min: number,
        max: number,
        recommendInput: { ready: readonly MetricValues[]; unready: number; external: MetricValues },
        metrics: readonly ResolvedMetric[],
        note: string,
      ): number | undefined => {
        const recommendation = recommend({
          min,
          max,
          current,
          tolerance,
          targets: targetsOf(metrics),
          unready: recommendInput.unready,
          ready: recommendInput.ready,
          external: recommendInput.external,
          upstreamCompat: compat,
        });
        if (recommendation.skip) {
          reasons.push(
            `${label} ${what}: ${note}; no metric signal (${describe(recommendation)}); no action`,
          );
          return undefined;
        }
        const correction = correct(
          { now, current, recommended: recommendation.replicas, min, max, behavior },
          unitState(key),
        );
        units[key] = correction.state;
        reasons.push(
          `${label} ${what}: ${note}; current ${current}, recommended ${recommendation.replicas} (${describe(recommendation)}) ` +
            `→ ${correction.replicas} (${correction.note})`,
        );
        return correction.replicas;
      };

      if (plan.kind === "homogeneous") {
        if (plan.note !== "") reasons.push(`${label}: homogeneous, ${plan.note}`);
        const target = config.target.kind === "homogeneous" ? config.target : undefined;
        for (const name of plan.pools) {
          const pool = byName.get(name);
          if (pool === undefined) {
            reasons.push(`${label} ${name}: pool not in the observation; hold`);
            continue;
          }
          const min = target?.min_replicas ?? pool.min;
          const max = target?.max_replicas ?? pool.max;
          const collected = collect(pool, topMetrics, context);
          const external = externalFor(observation, topMetrics, [pool]);
          const desired = scaleUnit(
            `pool:${name}`,
            name,
            pool.desired,
            min,
            max,
            { ...collected, external },
            topMetrics,
            collected.note,
          );
          if (desired !== undefined) targets[name] = { desired };
        }
      } else if (plan.kind === "heterogeneous" && config.target.kind === "heterogeneous") {
        const params = config.target.params;
        const members = plan.pools.map((name) => byName.get(name));
        if (members.some((pool) => pool === undefined)) {
          reasons.push(
            `${label}: heterogeneous pool(s) ${plan.pools.filter((_, i) => members[i] === undefined).join(", ")} not in the observation; hold`,
          );
        } else {
          const present = members as PoolView[];
          const current = present.reduce((sum, pool) => sum + pool.desired, 0);
          const min = params.reduce((sum, param) => sum + param.min_replicas, 0);
          const max = params.reduce((sum, param) => sum + param.max_replicas, 0);
          const ready: MetricValues[] = [];
          let unready = 0;
          const notes: string[] = [];
          present.forEach((pool) => {
            const collected = collect(pool, topMetrics, context);
            ready.push(...collected.ready);
            unready += collected.unready;
            notes.push(`${pool.name}: ${collected.note}`);
          });
          const external = externalFor(observation, topMetrics, present);
          const total = scaleUnit(
            "heterogeneous",
            `heterogeneous ${plan.pools.join("+")}`,
            current,
            min,
            max,
            { ready, unready, external },
            topMetrics,
            notes.join("; "),
          );
          if (total !== undefined) {
            const optimizerParams: OptimizerParam[] = params.map((param, index) => ({
              cost: param.cost ?? present[index]!.capacity.costPerReplicaHour_usd,
              min: param.min_replicas,
              max: param.max_replicas,
            }));
            const order = scalingOrder(optimizerParams, config.target.cost_expansion_rate_percent);
            const split = distribute(optimizerParams, order, total);
            present.forEach((pool, index) => (targets[pool.name] = { desired: split[index]! }));
            reasons.push(
              `${label}: total ${total} split by cost (${optimizerParams.map((param, i) => `${present[i]!.name} cost ${fmt(param.cost)}`).join(", ")}, ` +
                `rate ${config.target.cost_expansion_rate_percent}%) → ${present.map((pool, i) => `${pool.name} ${split[i]}`).join(", ")}`,
            );
          }
        }
      } else if (plan.kind === "disaggregated" && config.target.kind === "disaggregated") {
        const target = config.target;
        const corrected: Record<string, number> = {};
        const bounds: Record<string, RoleBounds> = {};
        let skipped = false;
        for (const [role, poolName] of Object.entries(plan.roles)) {
          const spec = target.roles[role]!;
          bounds[role] = { min: spec.min_replicas, max: spec.max_replicas };
          const pool = byName.get(poolName);
          if (pool === undefined) {
            reasons.push(`${label} ${role}: pool ${poolName} not in the observation; no action`);
            skipped = true;
            break;
          }
          if (spec.min_replicas === spec.max_replicas && spec.min_replicas > 0) {
            corrected[role] = spec.min_replicas;
            reasons.push(`${label} ${role} (${poolName}): fixed at ${spec.min_replicas}`);
            continue;
          }
          const metrics = roleMetrics[role]!;
          const collected = collect(pool, metrics, context);
          const external = externalFor(observation, metrics, [pool]);
          const what = `${role} (${poolName})`;
          const desired = scaleUnit(
            `role:${role}`,
            what,
            pool.desired,
            spec.min_replicas,
            spec.max_replicas,
            { ...collected, external },
            metrics,
            collected.note,
          );
          if (desired === undefined) {
            reasons.push(`${label}: role ${role} has no signal, so no role is scaled this tick`);
            skipped = true;
            break;
          }
          corrected[role] = desired;
        }
        if (!skipped) {
          const repaired = enforceRoleRatio(corrected, bounds, target.ratio);
          for (const [role, poolName] of Object.entries(plan.roles))
            targets[poolName] = { desired: repaired.replicas[role]! };
          if (target.ratio !== undefined) {
            const { numerator_role: num, denominator_role: den, min_ratio: lo, max_ratio: hi } = target.ratio;
            reasons.push(
              `${label}: ratio ${num}/${den} in [${fmt(lo)}, ${fmt(hi)}]: ${corrected[num]}/${corrected[den]} → ` +
                `${repaired.replicas[num]}/${repaired.replicas[den]}${repaired.adjusted ? " (adjusted)" : ""}` +
                `${repaired.violated ? " (RatioConstraintViolated: the role bounds cannot meet the band)" : ""}`,
            );
          }
        }
      }
      if (reasons.length === 0) reasons.push(`${label}: no pool to scale`);
      const histograms = usesHistograms ? nextFrames(state.histograms, now, context.frame) : state.histograms;
      return { decision: { targets, reasons }, state: { units, histograms } };
    },
  };
}

/**
 * Registry adapter (`autoscaling.policy: kthena`): `policy_config` is either our snake_case config or
 * `{policy_file, defaults?, upstream_compat?, target?}` naming an upstream Kthena / MatrixInfer YAML
 * file, resolved relative to the config file.
 */
export function createKthenaFromPolicyConfig(
  raw: Readonly<Record<string, unknown>>,
  context: PolicyContext,
): Policy<KthenaState> {
  const where = `${context.source}: autoscaling.policy_config`;
  if (!("policy_file" in raw)) return createKthenaPolicy(parseKthenaConfig(raw, where), context.pools);
  const { policy_file: file, defaults, upstream_compat, target, ...rest } = raw;
  const extra = Object.keys(rest);
  if (extra.length > 0) {
    throw new UsageError(
      `${where}: with policy_file only defaults, upstream_compat and target may be set, not ${extra.join(", ")}`,
    );
  }
  if (typeof file !== "string" || file === "")
    throw new UsageError(`${where}.policy_file: expected a file path`);
  if (defaults !== undefined && defaults !== "webhook" && defaults !== "crd") {
    throw new UsageError(`${where}.defaults: expected "webhook" or "crd", got ${JSON.stringify(defaults)}`);
  }
  if (upstream_compat !== undefined && typeof upstream_compat !== "boolean") {
    throw new UsageError(`${where}.upstream_compat: expected true or false`);
  }
  if (target !== undefined && typeof target !== "string")
    throw new UsageError(`${where}.target: expected a name`);
  const path = resolve(dirname(context.source), file);
  const config = loadKthenaPolicyFile(path, {
    ...(defaults === undefined ? {} : { defaults }),
    ...(upstream_compat === undefined ? {} : { upstream_compat }),
    ...(target === undefined ? {} : { target }),
  });
  return createKthenaPolicy(config, context.pools);
}
