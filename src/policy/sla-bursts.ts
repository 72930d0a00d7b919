import { chiSquareUpperTail, upperPredictionBound } from "./primitives/statistics.ts";
import type { SlaConfig } from "./sla.ts";
import type { TrafficWindow } from "./types.ts";

/**
 * The `sla` planner's burst plan: traffic is cut into windows of `burst_window_s`; a window whose
 * arrivals fail a Poisson dispersion test records its busiest interval's rates, and the plan holds
 * capacity for an upper prediction bound of the next window's burst over the recent windows.
 */

/** Traffic of one controller interval: arrivals and their prompt tokens over `seconds`. */
interface Interval {
  readonly seconds: number;
  readonly requests: number;
  readonly prompt: number;
}

/**
 * The window being filled: its totals, how many intervals, Σ requests² / seconds over its intervals
 * (for the dispersion test) and its busiest interval so far.
 */
export interface OpenWindow extends Interval {
  readonly intervals: number;
  readonly squares: number;
  readonly peak: Interval;
}

/**
 * A closed window: its burst peak, the busiest interval's rates (requests/s, prompt tokens/s) when
 * the window failed the dispersion test (0 otherwise).
 */
export interface ClosedWindow {
  readonly burstRequests: number;
  readonly burstPrompt: number;
  /** How long the window's arrivals would last at the burst's rate (0 without a burst). */
  readonly burstSeconds: number;
}

const EMPTY_INTERVAL: Interval = { seconds: 0, requests: 0, prompt: 0 };
export const EMPTY_WINDOW: OpenWindow = { ...EMPTY_INTERVAL, intervals: 0, squares: 0, peak: EMPTY_INTERVAL };

/** The recent windows' bursts and the window being filled (part of the planner's state). */
export interface BurstWindows {
  readonly open: OpenWindow;
  readonly closed: readonly ClosedWindow[];
}

/**
 * P-value of Pearson's dispersion test of a window: how likely Poisson arrivals at the window's mean
 * rate spread its arrivals over its intervals at least this unevenly. X² = Σ (n − r·w)² / (r·w) over
 * the intervals (n arrivals in w seconds, r the window's mean rate) is χ² with intervals − 1 degrees
 * of freedom. 1 when there is nothing to test.
 */
export function dispersionPValue(window: OpenWindow): number {
  if (window.intervals < 2 || window.requests <= 0 || window.seconds <= 0) return 1;
  const rate = window.requests / window.seconds;
  const statistic = window.squares / rate - window.requests;
  return chiSquareUpperTail(statistic, window.intervals - 1);
}

/** A burst: its peak rates, and how long the window's arrivals would last at the peak rate. */
export interface Burst {
  readonly requests: number;
  readonly prompt: number;
  readonly seconds: number;
}

const NO_BURST: Burst = { requests: 0, prompt: 0, seconds: 0 };

/**
 * The burst peak of a window: the rates of its busiest interval when the window fails the dispersion
 * test at `burst_significance`, else none. A burst is planned for at its own rate; traffic that
 * merely fluctuates as memoryless arrivals do is left to the queueing model.
 */
export function burstPeak(window: OpenWindow, config: SlaConfig): Burst {
  const peak = window.peak;
  if (peak.requests <= 0 || peak.seconds <= 0) return NO_BURST;
  if (dispersionPValue(window) > config.burst_significance) return NO_BURST;
  const requests = peak.requests / peak.seconds;
  return { requests, prompt: peak.prompt / peak.seconds, seconds: window.requests / requests };
}

/**
 * Rates to plan for so that the next burst finds its capacity ready: the upper prediction bound
 * (`burst_quantile`) of the burst peaks of the last closed windows (a window without a burst counts
 * as 0), and at least the burst seen so far in the window being filled; with the bursts' mean
 * duration. Zero for traffic without bursts.
 */
export function burstPlan(windows: BurstWindows, config: SlaConfig): Burst {
  const open = burstPeak(windows.open, config);
  const bound = (values: number[]): number =>
    Math.max(0, upperPredictionBound(values, config.burst_quantile));
  const durations = windows.closed.map((window) => window.burstSeconds).filter((seconds) => seconds > 0);
  if (open.seconds > 0) durations.push(open.seconds);
  return {
    requests: Math.max(open.requests, bound(windows.closed.map((window) => window.burstRequests))),
    prompt: Math.max(open.prompt, bound(windows.closed.map((window) => window.burstPrompt))),
    seconds: durations.length > 0 ? durations.reduce((sum, value) => sum + value, 0) / durations.length : 0,
  };
}

/** Adds one traffic interval to the current variability window; closes it when it is long enough. */
export function accumulateWindow(
  windows: BurstWindows,
  traffic: TrafficWindow,
  config: SlaConfig,
): BurstWindows {
  const interval: Interval = {
    seconds: traffic.window_s,
    requests: traffic.arrivals,
    prompt: traffic.promptTokens,
  };
  const previous = windows.open.peak;
  const busier =
    previous.seconds <= 0 || interval.requests / interval.seconds > previous.requests / previous.seconds;
  const open: OpenWindow = {
    seconds: windows.open.seconds + interval.seconds,
    requests: windows.open.requests + interval.requests,
    prompt: windows.open.prompt + interval.prompt,
    intervals: windows.open.intervals + 1,
    squares: windows.open.squares + (interval.seconds > 0 ? interval.requests ** 2 / interval.seconds : 0),
    peak: busier ? interval : previous,
  };
  if (open.seconds < config.burst_window_s) return { ...windows, open };
  const burst = burstPeak(open, config);
  const closed: ClosedWindow[] = [
    ...windows.closed,
    {
      burstRequests: burst.requests,
      burstPrompt: burst.prompt,
      burstSeconds: burst.seconds,
    },
  ];
  return { open: EMPTY_WINDOW, closed: closed.slice(-config.burst_windows) };
}
