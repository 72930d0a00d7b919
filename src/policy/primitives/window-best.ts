/**
 * Sliding-window extremes over time-stamped values (autoscalers spec §1.2). Both are small value
 * objects that serialize to plain JSON so a policy's state can be logged, persisted and replayed.
 */

export type Extreme = "max" | "min";

interface Stamped {
  readonly t: number;
  readonly v: number;
}

function better(kind: Extreme, a: number, b: number): boolean {
  return kind === "max" ? a >= b : a <= b;
}

/**
 * `RecWindowBest(W, max|min)`: the best recommendation appended within `[now − W, now]`. A monotonic
 * deque keeps it O(1) amortised per append. A window of 0 disables it (`best` is undefined).
 */
export interface RecWindowState {
  readonly window_s: number;
  readonly kind: Extreme;
  readonly entries: readonly Stamped[];
}

export function recWindow(kind: Extreme, window_s: number): RecWindowState {
  return { window_s, kind, entries: [] };
}

export function recWindowAppend(state: RecWindowState, now: number, value: number): RecWindowState {
  if (state.window_s <= 0) return state;
  const entries = state.entries.filter((entry) => entry.t > now - state.window_s);
  while (entries.length > 0 && better(state.kind, value, entries[entries.length - 1]!.v)) entries.pop();
  entries.push({ t: now, v: value });
  return { ...state, entries };
}

/** Best value still inside the window at `now`, or undefined when the window is empty or disabled. */
export function recWindowBest(state: RecWindowState, now: number): number | undefined {
  if (state.window_s <= 0) return undefined;
  for (const entry of state.entries) if (entry.t > now - state.window_s) return entry.v;
  return undefined;
}

/**
 * `StepWindowBest(W, max|min)`: the best over the values that were *in effect* at any instant during
 * `[now − W, now]`. The latest appended value is the current level; a replaced level is remembered
 * until `W` after its replacement. The current level itself expires `2·W` after it was set (Kthena's
 * behaviour). `best(x)` also includes the caller's current replica count `x`.
 */
export interface StepWindowState {
  readonly window_s: number;
  readonly kind: Extreme;
  /** Replaced levels stamped with the time they stopped being in effect. */
  readonly past: readonly Stamped[];
  readonly current: Stamped | undefined;
}

export function stepWindow(kind: Extreme, window_s: number): StepWindowState {
  return { window_s, kind, past: [], current: undefined };
}

export function stepWindowAppend(state: StepWindowState, now: number, value: number): StepWindowState {
  if (state.window_s <= 0) return state;
  let past = state.past.filter((entry) => entry.t > now - state.window_s);
  if (state.current !== undefined && state.current.t > now - 2 * state.window_s) {
    const replaced = state.current.v;
    past = past.filter((entry) => !better(state.kind, replaced, entry.v));
    past.push({ t: now, v: replaced });
  }
  return { ...state, past, current: { t: now, v: value } };
}

/** Best level in effect during the window, including `currentReplicas`; undefined when disabled. */
export function stepWindowBest(
  state: StepWindowState,
  now: number,
  currentReplicas: number,
): number | undefined {
  if (state.window_s <= 0) return undefined;
  let best = currentReplicas;
  const consider = (value: number): void => {
    if (better(state.kind, value, best)) best = value;
  };
  for (const entry of state.past) if (entry.t > now - state.window_s) consider(entry.v);
  if (state.current !== undefined && state.current.t > now - 2 * state.window_s) consider(state.current.v);
  return best;
}
