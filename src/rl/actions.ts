import { activeCount, type Decision, type Observation, type PoolDecision } from "../policy/types.ts";

/**
 * Actions → instance deltas (spec §5.2), shared by the environment and the deployed policy so both
 * turn an agent's output into the same `Decision`.
 *
 * - continuous: one value per pool, clipped to [-1, 1] (the fork applied the unclipped Gaussian
 *   sample, so |delta| could exceed the step, #27), times `action_scale_step`, rounded half away
 *   from zero (Python's banker's rounding sent ±0.5 to 0);
 * - discrete: one choice per pool in {-1, 0, +1} instances.
 *
 * The delta applies to the pool's current size (starting + ready replicas). Pool minimum and
 * maximum, `max_total_instances`, startup delay and drain are the ScalingManager's business: the
 * decision asks, the manager clamps.
 */
export type ActionKind = "continuous" | "discrete";

/** Choices per pool of the discrete action space (index 0, 1, 2 → -1, 0, +1). */
export const DISCRETE_CHOICES = 3;

/** Rounds to the nearest integer, ties away from zero (0.5 → 1, -0.5 → -1), never -0. */
export function roundHalfAwayFromZero(value: number): number {
  const rounded = Math.sign(value) * Math.floor(Math.abs(value) + 0.5);
  return rounded === 0 ? 0 : rounded;
}

/** A continuous action value → instance delta. */
export function continuousDelta(action: number, scaleStep: number): number {
  const clipped = Number.isNaN(action) ? 0 : Math.max(-1, Math.min(1, action));
  return roundHalfAwayFromZero(clipped * scaleStep);
}

/** A discrete choice index (0, 1, 2) → instance delta (-1, 0, +1). */
export function discreteDelta(choice: number): number {
  return Math.max(0, Math.min(DISCRETE_CHOICES - 1, Math.round(choice))) - 1;
}

/** Instance deltas per pool (vector order) for an action vector. */
export function actionDeltas(kind: ActionKind, actions: ArrayLike<number>, scaleStep: number): number[] {
  const deltas: number[] = [];
  for (let i = 0; i < actions.length; i++)
    deltas.push(kind === "continuous" ? continuousDelta(actions[i]!, scaleStep) : discreteDelta(actions[i]!));
  return deltas;
}

/** What the last-action feature records: the action as a fraction of its range, in [-1, 1]. */
export function actionFractions(kind: ActionKind, actions: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < actions.length; i++)
    out.push(
      kind === "continuous" ? Math.max(-1, Math.min(1, actions[i] ?? 0)) : discreteDelta(actions[i] ?? 1),
    );
  return out;
}

/**
 * The decision for per-pool deltas: pool size (starting + ready) plus delta, for pools whose delta
 * is not zero. Pools absent from the observation are skipped.
 */
export function deltaDecision(
  observation: Observation,
  poolNames: readonly string[],
  deltas: readonly number[],
  reason: string,
): Decision {
  const targets: Record<string, PoolDecision> = {};
  const reasons: string[] = [];
  poolNames.forEach((name, index) => {
    const delta = deltas[index] ?? 0;
    if (delta === 0) return;
    const pool = observation.pools.find((candidate) => candidate.name === name);
    if (pool === undefined) return;
    const current = activeCount(pool);
    targets[name] = { desired: Math.max(0, current + delta) };
    reasons.push(`${name} ${delta > 0 ? "+" : ""}${delta}`);
  });
  return {
    targets,
    reasons: [reasons.length === 0 ? `${reason}: hold` : `${reason}: ${reasons.join(", ")}`],
  };
}
