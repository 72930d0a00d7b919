/**
 * Kthena's `RecommendedInstancesAlgorithm` (autoscalers spec §4.5): the HPA proportional rule per
 * metric, the largest answer over metrics, clamped to [min, max].
 *
 * Two semantics, chosen by `upstreamCompat`:
 * - default (HPA-correct, spec §1.1/§1.4/§2.4): `ready` holds ONE entry per ready replica. The usage
 *   ratio is `Σ/(target·counted)`, so the tolerance is a band around the per-replica target and
 *   `ceil(ratio·counted)` is the answer (T2: Σ 10.5, target 10, 5 replicas → 2). Unready replicas
 *   count as 0 on a scale-up and missing ones as at-target on a scale-down / 0 on a scale-up, with
 *   the denominator over ready + unready (+ missing). A metric with no data at all blocks scale-down,
 *   as HPA refuses to shrink on a partial view.
 * - `upstreamCompat` (kthena HEAD 3cc05728 as the scalers call it): `ready` holds one SUMMED map per
 *   backend, so n = 1 per backend, the tolerance is checked on `Σ/target` (no hysteresis, and a dead
 *   zone near one replica's worth: T2 → 5), and the unready adjustment divides by 1 + unready.
 */

/** Metric values by policy metric name; a name absent from an entry means "missing" for that entry. */
export type MetricValues = Readonly<Record<string, number>>;

export interface RecommendInput {
  readonly min: number;
  readonly max: number;
  /** The unit's current target (spec.replicas: desired, starting replicas included). */
  readonly current: number;
  /** tolerancePercent / 100. */
  readonly tolerance: number;
  /** Per-instance target per metric name. */
  readonly targets: Readonly<Record<string, number>>;
  /** Replicas that exist but are not ready (starting). */
  readonly unready: number;
  /** One entry per ready replica (default) or one summed map per backend (`upstreamCompat`). */
  readonly ready: readonly MetricValues[];
  /** External metrics (totals across the unit), by metric name; they take precedence over pod data. */
  readonly external: MetricValues;
  readonly upstreamCompat?: boolean;
}

export interface MetricRecommendation {
  readonly name: string;
  readonly target: number;
  readonly source: "external" | "pods";
  /** Undefined when the metric had no data this tick (it is skipped). */
  readonly desired: number | undefined;
  /** The external total, or Σ over the reporting entries. */
  readonly observed: number;
  /** Entries that reported the metric. */
  readonly reporting: number;
  readonly note: string;
}

export interface Recommendation {
  /** The recommended instances (0 when `skip`). */
  readonly replicas: number;
  /** No metric produced a recommendation: the caller must not act this tick. */
  readonly skip: boolean;
  readonly metrics: readonly MetricRecommendation[];
  readonly note: string;
}

/** Upstream's `getCeilDesiredInstances`: NaN → 0, ceil, clamped to [0, 1e9]. */
export function ceilSat(value: number): number {
  if (Number.isNaN(value)) return 0;
  const ceiled = Math.ceil(value);
  return ceiled < 1e9 ? Math.max(0, ceiled) : 1e9;
}

function direction(ratio: number): 1 | -1 {
  return ratio >= 1 ? 1 : -1;
}

export function recommend(input: RecommendInput): Recommendation {
  const { min, max, current } = input;
  if (current < min)
    return { replicas: min, skip: false, metrics: [], note: `current ${current} < min ${min}` };
  if (current > max)
    return { replicas: max, skip: false, metrics: [], note: `current ${current} > max ${max}` };
  const metrics: MetricRecommendation[] = [];
  let best = 0;
  let any = false;
  let invalid = 0;
  // Sorted so reasons (and ties) do not depend on the config's key order.
  for (const name of Object.keys(input.targets).sort()) {
    const target = input.targets[name]!;
    const externalValue = input.external[name];
    const result =
      externalValue !== undefined
        ? externalMetric(input, name, target, externalValue)
        : input.upstreamCompat
          ? podMetricUpstream(input, name, target)
          : podMetricHpa(input, name, target);
    metrics.push(result);
    if (result.desired === undefined) {
      invalid++;
      continue;
    }
    best = any ? Math.max(best, result.desired) : result.desired;
    any = true;
  }
  if (!any) return { replicas: 0, skip: true, metrics, note: "no metric has data" };
  if (!input.upstreamCompat && invalid > 0 && best < current) {
    return {
      replicas: current,
      skip: false,
      metrics,
      note: `hold at ${current}: ${invalid} metric(s) without data, refusing to scale down on a partial view`,
    };
  }
  const replicas = Math.min(Math.max(best, min), max);
  return {
    replicas,
    skip: false,
    metrics,
    note: replicas !== best ? `${best} clamped to [${min}, ${max}]` : "",
  };
}

/** External metric: a total. `want/current` is already a per-replica ratio upstream, so both modes agree. */
function externalMetric(
  input: RecommendInput,
  name: string,
  target: number,
  value: number,
): MetricRecommendation {
  const want = value / target;
  const within = Math.abs(want / input.current - 1) <= input.tolerance;
  const desired = within ? input.current : ceilSat(want);
  const note = `${name} external ${fmt(value)} / target ${fmt(target)} = ${fmt(want)}${within ? " (within tolerance)" : ""}`;
  return { name, target, source: "external", desired, observed: value, reporting: 1, note };
}

/** Spec §4.5 `perInstance`, exactly as upstream computes it over whatever list it is handed. */
function podMetricUpstream(input: RecommendInput, name: string, target: number): MetricRecommendation {
  let sum = 0;
  let n = 0;
  let missing = 0;
  for (const entry of input.ready) {
    const value = entry[name];
    if (value === undefined) missing++;
    else {
      sum += value;
      n++;
    }
  }
  const base = { name, target, source: "pods" as const, observed: sum, reporting: n };
  if (n === 0) return { ...base, desired: undefined, note: `${name}: no data` };
  const ratio = sum / n / target;
  const dir = direction(ratio);
  const addUnready = input.unready > 0 && dir > 0;
  const head = `${name} Σ ${fmt(sum)} over ${n} entr${n === 1 ? "y" : "ies"} / target ${fmt(target)}: ratio ${fmt(ratio)}`;
  if (!addUnready && missing === 0) {
    const within = Math.abs(ratio - 1) <= input.tolerance;
    return {
      ...base,
      desired: within ? input.current : ceilSat(ratio * n),
      note: `${head}${within ? " (within tolerance of 1)" : ""}`,
    };
  }
  let counted = n + missing;
  let adjusted = sum;
  if (dir < 0) adjusted += missing * target;
  if (addUnready) counted += input.unready;
  const ratio2 = adjusted / counted / target;
  const dir2 = direction(ratio2);
  const note = `${head}; with ${missing} missing, ${addUnready ? input.unready : 0} unready: ratio ${fmt(ratio2)}`;
  if (Math.abs(ratio2 - 1) <= input.tolerance || dir !== dir2)
    return { ...base, desired: input.current, note };
  const desired = ceilSat(ratio2 * counted);
  if ((dir2 < 0 && desired > input.current) || (dir2 > 0 && desired < input.current)) {
    return { ...base, desired: input.current, note };
  }
  return { ...base, desired, note };
}

/** HPA's pod-metric rule (spec §2.4) over one entry per ready replica. */
function podMetricHpa(input: RecommendInput, name: string, target: number): MetricRecommendation {
  let sum = 0;
  let n = 0;
  let missing = 0;
  for (const entry of input.ready) {
    const value = entry[name];
    if (value === undefined) missing++;
    else {
      sum += value;
      n++;
    }
  }
  const base = { name, target, source: "pods" as const, observed: sum, reporting: n };
  if (n === 0) return { ...base, desired: undefined, note: `${name}: no ready replica reports it` };
  const ratio = sum / (n * target);
  const head = `${name} Σ ${fmt(sum)} over ${n} ready / (target ${fmt(target)} × ${n}): ratio ${fmt(ratio)}`;
  const withUnready = input.unready > 0 && ratio > 1;
  if (!withUnready && missing === 0) {
    const within = Math.abs(ratio - 1) <= input.tolerance;
    return {
      ...base,
      desired: within ? input.current : ceilSat(ratio * n),
      note: `${head}${within ? " (within tolerance)" : ""}`,
    };
  }
  let adjusted = sum;
  let counted = n;
  if (missing > 0) {
    // Scale-down: a replica we cannot see is assumed at target; scale-up: assumed idle.
    if (ratio < 1) adjusted += missing * target;
    counted += missing;
  }
  if (withUnready) counted += input.unready;
  const ratio2 = adjusted / (counted * target);
  const note = `${head}; counting ${missing} missing and ${withUnready ? input.unready : 0} unready: ratio ${fmt(ratio2)}`;
  if (Math.abs(ratio2 - 1) <= input.tolerance || (ratio < 1 && ratio2 > 1) || (ratio > 1 && ratio2 < 1)) {
    return { ...base, desired: input.current, note: `${note} → hold` };
  }
  const desired = ceilSat(ratio2 * counted);
  if ((ratio2 < 1 && desired > input.current) || (ratio2 > 1 && desired < input.current)) {
    return { ...base, desired: input.current, note: `${note} → hold` };
  }
  return { ...base, desired, note };
}

/** Short number formatting for reasons (no trailing noise from binary fractions). */
export function fmt(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}
