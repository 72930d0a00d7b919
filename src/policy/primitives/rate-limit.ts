/**
 * Rate-limit families (autoscalers spec §1.3): Kubernetes HPA behavior policies over a scale-event
 * log, HPA's legacy cap, and Knative's rate bounds. Pure functions over plain-JSON state.
 */

/** One HPA scaling policy: at most `value` pods, or `value` percent, per `period_s`. */
export interface ScalingPolicy {
  readonly type: "pods" | "percent";
  readonly value: number;
  readonly period_s: number;
}

/** `max` picks the policy allowing the largest change, `min` the smallest, `disabled` forbids the direction. */
export type SelectPolicy = "max" | "min" | "disabled";

export interface ScalingRules {
  readonly policies: readonly ScalingPolicy[];
  readonly select_policy: SelectPolicy;
}

/** A past scale event: `change` replicas added (in an up log) or removed (in a down log), at `t`. */
export interface ScaleEvent {
  readonly t: number;
  readonly change: number;
}

/** `EventLog`: scale events of one direction, oldest first. */
export interface EventLogState {
  readonly events: readonly ScaleEvent[];
}

export function eventLog(): EventLogState {
  return { events: [] };
}

/** Appends an event and forgets those older than `retention_s` (the longest policy period). */
export function eventLogAppend(
  log: EventLogState,
  now: number,
  change: number,
  retention_s: number,
): EventLogState {
  const events = log.events.filter((event) => event.t > now - retention_s);
  events.push({ t: now, change });
  return { events };
}

/** Σ change of the events inside `(now − period_s, now]`. */
export function eventLogSum(log: EventLogState, now: number, period_s: number): number {
  let sum = 0;
  for (const event of log.events) if (event.t > now - period_s) sum += event.change;
  return sum;
}

export function longestPeriod(rules: ScalingRules): number {
  let longest = 0;
  for (const policy of rules.policies) longest = Math.max(longest, policy.period_s);
  return longest;
}

/**
 * Replicas at the start of a policy's period: `current − added + removed` within it. Counting both
 * directions (as current Kubernetes does) keeps a quick down-then-up from resetting the budget.
 */
export function periodStartReplicas(
  current: number,
  upEvents: EventLogState,
  downEvents: EventLogState,
  now: number,
  period_s: number,
): number {
  return current - eventLogSum(upEvents, now, period_s) + eventLogSum(downEvents, now, period_s);
}

/**
 * Highest replica count the scale-up rules allow now: per policy `start + pods` or
 * `ceil(start · (1 + percent/100))`, combined by `select_policy` (`disabled`: `current`).
 */
export function scaleUpLimit(
  current: number,
  upEvents: EventLogState,
  downEvents: EventLogState,
  rules: ScalingRules,
  now: number,
): number {
  if (rules.select_policy === "disabled" || rules.policies.length === 0) return current;
  let result = rules.select_policy === "min" ? Infinity : -Infinity;
  for (const policy of rules.policies) {
    const start = periodStartReplicas(current, upEvents, downEvents, now, policy.period_s);
    // start·(100+v)/100 is exact for integers, where start·(1+v/100) may land just above an integer.
    const proposed =
      policy.type === "pods" ? start + policy.value : Math.ceil((start * (100 + policy.value)) / 100);
    result = rules.select_policy === "min" ? Math.min(result, proposed) : Math.max(result, proposed);
  }
  return result;
}

/**
 * Lowest replica count the scale-down rules allow now: per policy `start − pods` or
 * `trunc(start · (1 − percent/100))`; `max` takes the lowest (largest change), `min` the highest.
 */
export function scaleDownLimit(
  current: number,
  upEvents: EventLogState,
  downEvents: EventLogState,
  rules: ScalingRules,
  now: number,
): number {
  if (rules.select_policy === "disabled" || rules.policies.length === 0) return current;
  let result = rules.select_policy === "min" ? -Infinity : Infinity;
  for (const policy of rules.policies) {
    const start = periodStartReplicas(current, upEvents, downEvents, now, policy.period_s);
    const proposed =
      policy.type === "pods" ? start - policy.value : Math.trunc((start * (100 - policy.value)) / 100);
    result = rules.select_policy === "min" ? Math.max(result, proposed) : Math.min(result, proposed);
  }
  return result;
}

/** Which bound cut a recommendation in `applyBehaviorLimits`. */
export type BehaviorLimit = "scaleUp policy" | "scaleDown policy" | "max replicas" | "min replicas";

/**
 * HPA's rate step (spec §2.5 step 2): bound a stabilized recommendation by the behavior limits and
 * `[min, max]`. A limit already used up by recent events holds at `current` until they age out.
 */
export function applyBehaviorLimits(args: {
  readonly current: number;
  readonly desired: number;
  readonly min: number;
  readonly max: number;
  readonly scaleUp: ScalingRules;
  readonly scaleDown: ScalingRules;
  readonly upEvents: EventLogState;
  readonly downEvents: EventLogState;
  readonly now: number;
}): {
  readonly replicas: number;
  /** The policy cap (scale-up) or floor (scale-down) in force, when the direction has one. */
  readonly limit: number | undefined;
  readonly limitedBy: BehaviorLimit | undefined;
} {
  const { current, desired, min, max, now } = args;
  if (desired > current) {
    const cap = Math.max(current, scaleUpLimit(current, args.upEvents, args.downEvents, args.scaleUp, now));
    const allowed = Math.min(max, cap);
    if (desired <= allowed) return { replicas: desired, limit: cap, limitedBy: undefined };
    return { replicas: allowed, limit: cap, limitedBy: cap < max ? "scaleUp policy" : "max replicas" };
  }
  if (desired < current) {
    const floor = Math.min(
      current,
      scaleDownLimit(current, args.upEvents, args.downEvents, args.scaleDown, now),
    );
    const allowed = Math.max(min, floor);
    if (desired >= allowed) return { replicas: desired, limit: floor, limitedBy: undefined };
    return { replicas: allowed, limit: floor, limitedBy: floor > min ? "scaleDown policy" : "min replicas" };
  }
  return { replicas: desired, limit: undefined, limitedBy: undefined };
}

/** HPA's legacy cap (behavior unset): at most `max(2·current, 4)` replicas after one sync. */
export function legacyScaleUpLimit(current: number): number {
  return Math.max(2 * current, 4);
}

/**
 * Knative's rate bounds around the ready count (at least 1): up to `ceil(upRate · ready)` and down to
 * `floor(ready / downRate)`; the floor is 0 when the revision is unreachable.
 */
export function knativeRateBounds(
  readyReplicas: number,
  maxScaleUpRate: number,
  maxScaleDownRate: number,
  reachable = true,
): { readonly maxUp: number; readonly maxDown: number } {
  const ready = Math.max(1, readyReplicas);
  return {
    maxUp: Math.ceil(maxScaleUpRate * ready),
    maxDown: reachable ? Math.floor(ready / maxScaleDownRate) : 0,
  };
}
