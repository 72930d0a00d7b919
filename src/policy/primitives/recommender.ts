/**
 * The proportional recommender every autoscaler starts from (autoscalers spec §1.1), its tolerance
 * band, and the HPA readiness and missing-metric adjustments (§1.4, §2.4), as small pure functions so
 * each stage can be tested alone and reused by Kthena/AIBrix-style policies.
 */

import type { ReplicaView } from "../types.ts";

/**
 * Relative slack for `ceil`: a ratio computed as (0.1 + 0.2) × 10 comes out as 3.0000000000000004 and must
 * still give 3 replicas, not 4.
 */
const CEIL_SLACK = 1e-9;

/** `ceil(x)` that ignores floating-point noise just above an integer. */
export function ceilReplicas(x: number): number {
  if (!Number.isFinite(x)) return x;
  // `|| 0` turns the -0 that ceil(-1e-9) gives into 0.
  return Math.ceil(x - CEIL_SLACK * Math.max(1, Math.abs(x))) || 0;
}

/** Dead band around ratio 1, per direction (KEP-4951); `up` and `down` are fractions (0.1 = 10 %). */
export interface Tolerance {
  readonly up: number;
  readonly down: number;
}

export function symmetricTolerance(tolerance: number): Tolerance {
  return { up: tolerance, down: tolerance };
}

/**
 * `1 − down ≤ ratio ≤ 1 + up`. Applied to the per-replica ratio (desired/current), never to a summed
 * metric, which is what makes it a hysteresis band (Kthena's summed variant is not one, spec §4.5).
 */
export function withinTolerance(ratio: number, tolerance: Tolerance): boolean {
  return 1 - tolerance.down <= ratio && ratio <= 1 + tolerance.up;
}

/** `ceil(ratio · counted)`: the per-replica form of the proportional rule. */
export function proportionalReplicas(ratio: number, counted: number): number {
  return ceilReplicas(ratio * counted);
}

/** `ceil(total / targetPerReplica)`: the total-based form used by Knative, Kthena and Dynamo. */
export function replicasForTotal(total: number, targetPerReplica: number): number {
  return ceilReplicas(total / targetPerReplica);
}

/** The tolerance-gated proportional rule: hold `current` inside the band, else `ceil(ratio · counted)`. */
export function recommendWithTolerance(
  ratio: number,
  counted: number,
  current: number,
  tolerance: Tolerance,
): number {
  return withinTolerance(ratio, tolerance) ? current : proportionalReplicas(ratio, counted);
}

/**
 * HPA pod groups (spec §2.4). IGNORED replicas are leaving (draining) and their metrics are dropped;
 * UNREADY ones are still starting (Pending); MISSING ones are running but could not be scraped.
 */
export type ReplicaGroup = "ready" | "unready" | "missing" | "ignored";

/** Which group a replica falls in, given the value its metric has (undefined when not scraped). */
export function replicaGroup(replica: ReplicaView, value: number | undefined): ReplicaGroup {
  if (replica.phase === "draining") return "ignored";
  if (replica.phase === "starting") return "unready";
  if (value === undefined || !Number.isFinite(value)) return "missing";
  return "ready";
}

export interface GroupedReplicas {
  /** Metric values of the READY replicas. */
  readonly readyValues: readonly number[];
  readonly unready: number;
  readonly missing: number;
  readonly ignored: number;
}

/** Groups a pool's replicas by `replicaGroup`, reading each replica's value with `valueOf`. */
export function groupReplicas(
  replicas: readonly ReplicaView[],
  valueOf: (replica: ReplicaView) => number | undefined,
): GroupedReplicas {
  const readyValues: number[] = [];
  let unready = 0;
  let missing = 0;
  let ignored = 0;
  for (const replica of replicas) {
    const value = replica.phase === "ready" ? valueOf(replica) : undefined;
    const group = replicaGroup(replica, value);
    if (group === "ready") readyValues.push(value!);
    else if (group === "unready") unready++;
    else if (group === "missing") missing++;
    else ignored++;
  }
  return { readyValues, unready, missing, ignored };
}

export interface ReadinessInput extends Omit<GroupedReplicas, "ignored"> {
  /** Target value per replica (for utilization: the target percentage). */
  readonly target: number;
  /**
   * What a MISSING replica counts as when the raw ratio says scale down: the target for plain
   * metrics, `max(100, target)` percent for utilization (HPA's CPU rule).
   */
  readonly missingOnScaleDown: number;
  readonly current: number;
  readonly tolerance: Tolerance;
}

export interface ReadinessResult {
  readonly replicas: number;
  /** Mean of the READY replicas over the target. */
  readonly ratio: number;
  /** The ratio after counting MISSING/UNREADY replicas, when an adjustment was needed. */
  readonly adjustedRatio: number | undefined;
  /** Replicas that entered the final `ceil(ratio · n)`. */
  readonly counted: number;
  /** Why the result is what it is, for decision reasons. */
  readonly note: string;
}

/**
 * The HPA replica calculation for a per-replica average (spec §2.4): the raw ratio over READY
 * replicas; then, when replicas are MISSING or scaling up with UNREADY ones, recompute with missing
 * replicas at target (scale-down) or 0 (scale-up) and unready ones at 0, and hold `current` whenever
 * the adjustment lands inside the band or would flip the direction. Undefined when no READY replica
 * has a value (the metric is invalid this tick).
 */
export function readinessAdjustedReplicas(input: ReadinessInput): ReadinessResult | undefined {
  const { readyValues, unready, missing, target, current, tolerance } = input;
  if (readyValues.length === 0) return undefined;
  let sum = 0;
  for (const value of readyValues) sum += value;
  const ratio = sum / readyValues.length / target;
  const scaleUpWithUnready = unready > 0 && ratio > 1;
  if (!scaleUpWithUnready && missing === 0) {
    if (withinTolerance(ratio, tolerance)) {
      return {
        replicas: current,
        ratio,
        adjustedRatio: undefined,
        counted: readyValues.length,
        note: "within tolerance",
      };
    }
    // ceil(ratio · n) with n = |READY| is ceil(Σ / target); computed that way it carries less rounding.
    const replicas = replicasForTotal(sum, target);
    return { replicas, ratio, adjustedRatio: undefined, counted: readyValues.length, note: "proportional" };
  }
  let adjustedSum = sum;
  let counted = readyValues.length;
  if (missing > 0) {
    if (ratio < 1) adjustedSum += missing * input.missingOnScaleDown;
    counted += missing;
  }
  if (scaleUpWithUnready) counted += unready;
  const adjustedRatio = adjustedSum / counted / target;
  const parts = [
    missing > 0 ? `${missing} missing at ${ratio < 1 ? input.missingOnScaleDown : 0}` : "",
    scaleUpWithUnready ? `${unready} unready at 0` : "",
  ].filter((part) => part !== "");
  const adjusted = parts.join(", ");
  const flipped = (ratio < 1 && adjustedRatio > 1) || (ratio > 1 && adjustedRatio < 1);
  if (withinTolerance(adjustedRatio, tolerance) || flipped) {
    const why =
      flipped && !withinTolerance(adjustedRatio, tolerance) ? "flips direction" : "within tolerance";
    return { replicas: current, ratio, adjustedRatio, counted, note: `${adjusted}: ${why}, hold` };
  }
  const replicas = replicasForTotal(adjustedSum, target);
  if ((adjustedRatio < 1 && replicas > current) || (adjustedRatio > 1 && replicas < current)) {
    return {
      replicas: current,
      ratio,
      adjustedRatio,
      counted,
      note: `${adjusted}: count moves against ratio, hold`,
    };
  }
  return { replicas, ratio, adjustedRatio, counted, note: adjusted };
}
