/**
 * Kthena's heterogeneous "optimizer" (autoscalers spec §4.8): a total replica count T (from the
 * recommend/correct pipeline over all backends) is split across instance types by filling cost-ordered
 * blocks. Blocks grow geometrically (1, 2, 4, … at the default 200 %), each priced at cost × size, so
 * cheap types take the first replicas and expensive types interleave later. The fill is nested and
 * monotone in T: raising T never moves replicas between types, which reuses warm instances.
 *
 * No per-type throughput is modelled (one replica of any type counts the same in T); upstream's docs
 * suggest encoding capacity into `cost`.
 */

export interface OptimizerParam {
  /** Relative cost of one replica of this type. */
  readonly cost: number;
  readonly min: number;
  readonly max: number;
}

export interface ReplicaBlock {
  /** Index of the param (type) this block belongs to. */
  readonly index: number;
  readonly size: number;
  readonly cost: number;
}

/**
 * The fill order: each type's capacity (max − min) cut into blocks of 1, r, r², … (r = rate/100, at
 * least 1 replica each, the last one the remainder), sorted by (cost, type index). At exactly 100 %
 * one block per type priced at the unit cost. Quirk kept from upstream: the remainder block is priced
 * by its own small size, so it can sort before the type's middle blocks.
 */
export function scalingOrder(
  params: readonly OptimizerParam[],
  costExpansionRatePercent: number,
): ReplicaBlock[] {
  const blocks: ReplicaBlock[] = [];
  params.forEach((param, index) => {
    let remaining = param.max - param.min;
    if (remaining <= 0) return;
    if (costExpansionRatePercent === 100) {
      blocks.push({ index, size: remaining, cost: param.cost });
      return;
    }
    let length = 1;
    while (remaining > 0) {
      const size = Math.min(remaining, Math.max(Math.trunc(length), 1));
      blocks.push({ index, size, cost: param.cost * size });
      remaining -= size;
      length *= costExpansionRatePercent / 100;
    }
  });
  // Array.prototype.sort is stable, so equal (cost, index) blocks keep their creation order.
  return blocks.sort((a, b) => a.cost - b.cost || a.index - b.index);
}

/** Replicas per type for a total T: every type at its min, then the extra poured into the blocks in order. */
export function distribute(
  params: readonly OptimizerParam[],
  order: readonly ReplicaBlock[],
  total: number,
): number[] {
  const replicas = params.map((param) => param.min);
  const sumMin = params.reduce((sum, param) => sum + param.min, 0);
  const sumMax = params.reduce((sum, param) => sum + param.max, 0);
  let extra = Math.min(Math.max(total, sumMin), sumMax) - sumMin;
  for (const block of order) {
    if (extra <= 0) break;
    const take = Math.min(extra, block.size);
    replicas[block.index]! += take;
    extra -= take;
  }
  return replicas;
}

const RATIO_SUFFIXES = ["_utilization", "_usage", "_ratio", "_percent", "_saturation"];

/**
 * Upstream's name heuristic (kthena#1202): a metric whose name ends in one of these suffixes is a ratio
 * (averaged across backends), anything else is additive (summed). `_rate` is deliberately additive.
 */
export function isRatioMetric(name: string): boolean {
  const lower = name.toLowerCase();
  return RATIO_SUFFIXES.some((suffix) => lower.endsWith(suffix));
}

export interface ExternalSample {
  readonly value: number;
  /** The backend's current replica count (its weight for ratio metrics). */
  readonly replicas: number;
}

/**
 * One external metric across backends: summed when additive; for ratio metrics the replica-weighted
 * mean, or the plain mean when every backend has 0 replicas. Undefined for no samples.
 */
export function aggregateExternal(name: string, samples: readonly ExternalSample[]): number | undefined {
  if (samples.length === 0) return undefined;
  if (!isRatioMetric(name)) return samples.reduce((sum, sample) => sum + sample.value, 0);
  const weight = samples.reduce((sum, sample) => sum + sample.replicas, 0);
  if (weight === 0) return samples.reduce((sum, sample) => sum + sample.value, 0) / samples.length;
  return samples.reduce((sum, sample) => sum + sample.value * sample.replicas, 0) / weight;
}
