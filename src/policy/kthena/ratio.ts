/**
 * Kthena's `EnforceRoleRatio` for disaggregated prefill/decode (autoscalers spec §4.9): after each role
 * has been recommended and rate-limited on its own, the pair is repaired into a replica-ratio band
 * `minRatio ≤ numerator/denominator ≤ maxRatio`. The repair is biased towards scaling up (it raises
 * the lagging side rather than lowering the leading one) and runs after the per-role rate limits, so
 * it can exceed a role's scale-up policy.
 */

export interface RatioConstraint {
  readonly numerator_role: string;
  readonly denominator_role: string;
  readonly min_ratio: number;
  readonly max_ratio: number;
}

export interface RoleBounds {
  readonly min: number;
  readonly max: number;
}

export interface RatioResult {
  readonly replicas: Readonly<Record<string, number>>;
  /** The repair changed a role (beyond clamping it to its bounds). */
  readonly adjusted: boolean;
  /** numerator/denominator after the repair; undefined when the denominator is 0. */
  readonly ratio: number | undefined;
  /** The bounds left no way to meet the band (upstream's RatioConstraintViolated condition). */
  readonly violated: boolean;
}

/** Guards ceil/floor of products like 0.1·30 against binary-fraction noise (3.0000000000000004). */
const EPSILON = 1e-9;
const ceil = (value: number): number => Math.ceil(value - EPSILON);
const floor = (value: number): number => Math.floor(value + EPSILON);
const clamp = (value: number, bounds: RoleBounds): number =>
  Math.min(Math.max(value, bounds.min), bounds.max);

export function enforceRoleRatio(
  replicas: Readonly<Record<string, number>>,
  bounds: Readonly<Record<string, RoleBounds>>,
  constraint: RatioConstraint | undefined,
): RatioResult {
  const out: Record<string, number> = {};
  for (const [role, value] of Object.entries(replicas)) {
    const roleBounds = bounds[role];
    out[role] = roleBounds === undefined ? value : clamp(value, roleBounds);
  }
  if (constraint === undefined) return { replicas: out, adjusted: false, ratio: undefined, violated: false };
  const {
    numerator_role: numRole,
    denominator_role: denRole,
    min_ratio: minRatio,
    max_ratio: maxRatio,
  } = constraint;
  const numBounds = bounds[numRole];
  const denBounds = bounds[denRole];
  let num = out[numRole];
  let den = out[denRole];
  if (numBounds === undefined || denBounds === undefined || num === undefined || den === undefined) {
    throw new Error(`ratio constraint roles "${numRole}"/"${denRole}" must both have replicas and bounds`);
  }
  // Both at zero: the pair scales to zero together, nothing to repair.
  if (num === 0 && den === 0) return { replicas: out, adjusted: false, ratio: undefined, violated: false };
  const before = { num, den };
  // One side at zero cannot serve: seed it to one replica before the repair.
  if (num === 0) num = clamp(1, numBounds);
  if (den === 0) den = clamp(1, denBounds);
  const ratio = num / den;
  if (ratio < minRatio) {
    const want = ceil(minRatio * den);
    if (want <= numBounds.max) num = Math.max(want, numBounds.min);
    else if (minRatio > 0) {
      num = numBounds.max;
      den = clamp(floor(num / minRatio), denBounds);
    }
  } else if (ratio > maxRatio) {
    if (maxRatio <= 0) num = 0;
    else {
      const want = ceil(num / maxRatio);
      if (want <= denBounds.max) den = Math.max(want, denBounds.min);
      else {
        den = denBounds.max;
        num = clamp(floor(maxRatio * den), numBounds);
      }
    }
  }
  num = clamp(num, numBounds);
  den = clamp(den, denBounds);
  out[numRole] = num;
  out[denRole] = den;
  const finalRatio = den === 0 ? undefined : num / den;
  const violated =
    finalRatio === undefined ? num > 0 : finalRatio < minRatio - EPSILON || finalRatio > maxRatio + EPSILON;
  return {
    replicas: out,
    adjusted: num !== before.num || den !== before.den,
    ratio: finalRatio,
    violated,
  };
}
