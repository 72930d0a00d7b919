/**
 * Kthena's panic mode and `CorrectedInstancesAlgorithm` (autoscalers spec §4.6): stabilization windows
 * over the raw recommendations, rate limits relative to the replica level recently in effect, and a
 * panic mode that lifts the stable scale-up limits for `panicModeHold` after the recommendation jumps.
 *
 * The history is plain JSON (window-best.ts value objects) and every step returns a new state, so a
 * decision can be replayed from a logged (observation, state) pair.
 */
import {
  recWindow,
  recWindowAppend,
  recWindowBest,
  stepWindow,
  stepWindowAppend,
  stepWindowBest,
} from "../primitives/window-best.ts";
import type { RecWindowState, StepWindowState } from "../primitives/window-best.ts";
import { fmt } from "./recommend.ts";

export type SelectPolicy = "Or" | "And";

/** A stable rate policy (scale-up stable, or scale-down). Seconds throughout. */
export interface StablePolicy {
  readonly instances: number;
  readonly percent: number;
  readonly period_s: number;
  readonly select_policy: SelectPolicy;
  readonly stabilization_window_s: number;
}

export interface PanicPolicy {
  /** Scale-up cap in panic: past + trunc(past·percent/100). */
  readonly percent: number;
  readonly period_s: number;
  /** Panic fires when recommended·100 ≥ current·threshold_percent (replica counts, not metrics). */
  readonly threshold_percent: number;
  /** Panic lasts this long after the last crossing; 0 disables panic. */
  readonly hold_s: number;
}

export interface Behavior {
  readonly scale_up: { readonly stable: StablePolicy; readonly panic: PanicPolicy };
  readonly scale_down: StablePolicy;
}

/** Per scalable unit (a pool, a role, or the heterogeneous total). */
export interface CorrectionState {
  /** When panic ends; null = not in panic (never 0, which a simulated clock can reach). */
  readonly panicEndsAt_s: number | null;
  /** Highest recommendation within scaleDown.stabilizationWindow (scale-down stabilization). */
  readonly maxRecommendation: RecWindowState;
  /** Lowest recommendation within scaleUp.stablePolicy.stabilizationWindow. */
  readonly minRecommendation: RecWindowState;
  /** Highest level in effect within scaleDown.period (scale-down rate base). */
  readonly maxCorrected: StepWindowState;
  /** Lowest level in effect within scaleUp.stablePolicy.period (stable scale-up rate base). */
  readonly minCorrectedStable: StepWindowState;
  /** Lowest level in effect within panicPolicy.period (panic scale-up rate base). */
  readonly minCorrectedPanic: StepWindowState;
}

export function initialCorrectionState(behavior: Behavior): CorrectionState {
  return {
    panicEndsAt_s: null,
    maxRecommendation: recWindow("max", behavior.scale_down.stabilization_window_s),
    minRecommendation: recWindow("min", behavior.scale_up.stable.stabilization_window_s),
    maxCorrected: stepWindow("max", behavior.scale_down.period_s),
    minCorrectedStable: stepWindow("min", behavior.scale_up.stable.period_s),
    minCorrectedPanic: stepWindow("min", behavior.scale_up.panic.period_s),
  };
}

export interface CorrectInput {
  readonly now: number;
  readonly current: number;
  readonly recommended: number;
  readonly min: number;
  readonly max: number;
  readonly behavior: Behavior;
}

export interface Correction {
  readonly replicas: number;
  readonly panic: boolean;
  readonly state: CorrectionState;
  readonly note: string;
}

export function inPanic(state: CorrectionState, now: number, hold_s: number): boolean {
  return hold_s > 0 && state.panicEndsAt_s !== null && now <= state.panicEndsAt_s;
}

/** One tick of §4.6: returns the corrected replicas and the updated history (input state untouched). */
export function correct(input: CorrectInput, state: CorrectionState): Correction {
  const { now, current, recommended: rec, behavior } = input;
  const panicPolicy = behavior.scale_up.panic;
  let panic = inPanic(state, now, panicPolicy.hold_s);
  let refresh = false;
  if (rec * 100 >= current * panicPolicy.threshold_percent) {
    refresh = true;
    panic = panicPolicy.hold_s > 0;
  }
  let out: number;
  let note: string;
  if (panic) {
    out = rec;
    note = `panic (rec ${rec} ≥ ${panicPolicy.threshold_percent}% of ${current} within the last ${fmt(panicPolicy.hold_s)} s)`;
    const past = stepWindowBest(state.minCorrectedPanic, now, current);
    if (past !== undefined && past > 0) {
      const cap = past + Math.trunc((past * panicPolicy.percent) / 100);
      if (cap < out) note += `, capped at ${cap} (${panicPolicy.percent}% over ${past})`;
      out = Math.min(out, cap);
    }
    out = Math.max(out, current);
  } else if (rec > current) {
    out = rec;
    note = "stable scale-up";
    const lowest = recWindowBest(state.minRecommendation, now);
    if (lowest !== undefined && lowest < out) {
      note += `, stabilized to ${lowest}`;
      out = lowest;
    }
    const up = behavior.scale_up.stable;
    const past = stepWindowBest(state.minCorrectedStable, now, current);
    if (past !== undefined) {
      const absolute = past + up.instances;
      const relative = past + Math.floor((past * up.percent) / 100);
      const cap = up.select_policy === "Or" ? Math.max(absolute, relative) : Math.min(absolute, relative);
      if (cap < out)
        note += `, rate-limited to ${cap} (from ${past}: +${up.instances} ${up.select_policy} +${up.percent}%)`;
      out = Math.min(out, cap);
    }
    out = Math.max(out, current);
  } else if (rec < current) {
    out = rec;
    note = "scale-down";
    const highest = recWindowBest(state.maxRecommendation, now);
    if (highest !== undefined && highest > out) {
      note += `, stabilized to ${highest} (highest recommendation in ${fmt(behavior.scale_down.stabilization_window_s)} s)`;
      out = highest;
    }
    const down = behavior.scale_down;
    const past = stepWindowBest(state.maxCorrected, now, current);
    if (past !== undefined) {
      const absolute = past - down.instances;
      const relative = past - Math.floor((past * down.percent) / 100);
      const floor = down.select_policy === "Or" ? Math.min(absolute, relative) : Math.max(absolute, relative);
      if (floor > out)
        note += `, rate-limited to ${floor} (from ${past}: −${down.instances} ${down.select_policy} −${down.percent}%)`;
      out = Math.max(out, floor);
    }
    out = Math.min(out, current);
  } else {
    out = rec;
    note = "steady";
  }
  const replicas = Math.min(Math.max(out, input.min), input.max);
  if (replicas !== out) note += `, clamped to [${input.min}, ${input.max}]`;
  let panicEndsAt_s = state.panicEndsAt_s;
  if (refresh) panicEndsAt_s = panicPolicy.hold_s > 0 ? now + panicPolicy.hold_s : null;
  // The windows record the raw recommendation and the corrected level (not the clamped-by-ratio one).
  const next: CorrectionState = {
    panicEndsAt_s,
    maxRecommendation: recWindowAppend(state.maxRecommendation, now, rec),
    minRecommendation: recWindowAppend(state.minRecommendation, now, rec),
    maxCorrected: stepWindowAppend(state.maxCorrected, now, replicas),
    minCorrectedStable: stepWindowAppend(state.minCorrectedStable, now, replicas),
    minCorrectedPanic: stepWindowAppend(state.minCorrectedPanic, now, replicas),
  };
  return { replicas, panic, state: next, note };
}
