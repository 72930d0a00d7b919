/**
 * SLO definitions (copied into the docs; keep the two in sync).
 *
 * Slowdown. Each completed request is compared with its latency on an otherwise idle reference
 * instance (`UnloadedLatencyFn`): TTFT slowdown = ttft / unloaded_ttft, TBT slowdown =
 * tbt / unloaded_tbt, E2E slowdown = e2e / (unloaded_ttft + unloaded_tbt · (output_tokens − 1)).
 *
 * Splitwise rule (`meets_splitwise_slo`, paper §6.3). Over the completed requests of the measured
 * window, with percentiles by numpy's linear method, the configuration meets the SLO when every
 * one of the nine checks holds with strict inequality:
 *   TTFT slowdown p50 < 2,    p90 < 3,   p99 < 6
 *   TBT  slowdown p50 < 1.25, p90 < 1.5, p99 < 5
 *   E2E  slowdown p50 < 1.25, p90 < 1.5, p99 < 5
 * A percentile that cannot be computed (no completed request) fails. Like the paper, this rule only
 * sees completed requests, so a run that leaves requests unfinished can still pass it; read it together
 * with attainment.
 *
 * Per-request SLO. A completed request meets the SLO when its TTFT slowdown ≤ the TTFT p99 threshold
 * and its TBT slowdown ≤ the TBT p99 threshold, and, when absolute targets are configured, its
 * ttft ≤ `ttft_s` and its tbt ≤ `tbt_s`.
 *
 * Attainment = requests meeting the SLO / requests that arrived in the measured window. Requests still
 * unfinished at the end of the run count as misses, so dropping or starving requests can never raise
 * attainment. (If fewer arrivals than completions were reported, the completions are used as the
 * denominator.) NaN when nothing arrived.
 */
import type { NumericColumn } from "./percentile.ts";
import { percentiles } from "./percentile.ts";

export interface SlowdownThresholds {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

export interface SloSpec {
  readonly ttft_slowdown: SlowdownThresholds;
  readonly tbt_slowdown: SlowdownThresholds;
  readonly e2e_slowdown: SlowdownThresholds;
  /** Optional absolute per-request TTFT target in seconds. */
  readonly ttft_s?: number;
  /** Optional absolute per-request TBT target in seconds. */
  readonly tbt_s?: number;
}

/** The Splitwise paper's SLO (spec §6.3). */
export const SPLITWISE_SLO: SloSpec = {
  ttft_slowdown: { p50: 2, p90: 3, p99: 6 },
  tbt_slowdown: { p50: 1.25, p90: 1.5, p99: 5 },
  e2e_slowdown: { p50: 1.25, p90: 1.5, p99: 5 },
};

/** Per-request columns the SLO evaluation reads (all the same length: the completed requests). */
export interface SloColumns {
  readonly ttft_s: NumericColumn;
  readonly tbt_s: NumericColumn;
  readonly ttft_slowdown: NumericColumn;
  readonly tbt_slowdown: NumericColumn;
  readonly e2e_slowdown: NumericColumn;
}

export interface PercentileCheck {
  readonly value: number;
  readonly threshold: number;
  /** value < threshold. */
  readonly pass: boolean;
}

export interface SlowdownChecks {
  readonly p50: PercentileCheck;
  readonly p90: PercentileCheck;
  readonly p99: PercentileCheck;
}

export interface SloResult {
  /** meeting / arrived; see the definitions above. */
  readonly attainment: number;
  /** Completed requests meeting the per-request SLO. */
  readonly meeting: number;
  /** Attainment denominator. */
  readonly arrived: number;
  /** All nine Splitwise percentile checks pass. */
  readonly meets_splitwise_slo: boolean;
  readonly thresholds: {
    readonly ttft_slowdown: SlowdownThresholds;
    readonly tbt_slowdown: SlowdownThresholds;
    readonly e2e_slowdown: SlowdownThresholds;
    readonly ttft_s: number | null;
    readonly tbt_s: number | null;
  };
  readonly per_percentile: {
    readonly ttft_slowdown: SlowdownChecks;
    readonly tbt_slowdown: SlowdownChecks;
    readonly e2e_slowdown: SlowdownChecks;
  };
}

/** Whether one completed request meets the per-request SLO. */
export function requestMeetsSlo(
  ttft_s: number,
  tbt_s: number,
  ttftSlowdown: number,
  tbtSlowdown: number,
  spec: SloSpec = SPLITWISE_SLO,
): boolean {
  return (
    ttftSlowdown <= spec.ttft_slowdown.p99 &&
    tbtSlowdown <= spec.tbt_slowdown.p99 &&
    (spec.ttft_s === undefined || ttft_s <= spec.ttft_s) &&
    (spec.tbt_s === undefined || tbt_s <= spec.tbt_s)
  );
}

/** Whether row `row` of per-request columns meets the per-request SLO. */
export function rowMeetsSlo(columns: SloColumns, row: number, spec: SloSpec = SPLITWISE_SLO): boolean {
  return requestMeetsSlo(
    columns.ttft_s[row]!,
    columns.tbt_s[row]!,
    columns.ttft_slowdown[row]!,
    columns.tbt_slowdown[row]!,
    spec,
  );
}

function checkSlowdowns(values: NumericColumn, thresholds: SlowdownThresholds): SlowdownChecks {
  const [p50 = NaN, p90 = NaN, p99 = NaN] = percentiles(values, [0.5, 0.9, 0.99]);
  const check = (value: number, threshold: number): PercentileCheck => ({
    value,
    threshold,
    pass: value < threshold,
  });
  return {
    p50: check(p50, thresholds.p50),
    p90: check(p90, thresholds.p90),
    p99: check(p99, thresholds.p99),
  };
}

/** Rebuilt with a fixed key order so serialised summaries are byte-identical whatever the caller's order. */
function orderedThresholds(thresholds: SlowdownThresholds): SlowdownThresholds {
  return { p50: thresholds.p50, p90: thresholds.p90, p99: thresholds.p99 };
}

function allPass(checks: SlowdownChecks): boolean {
  return checks.p50.pass && checks.p90.pass && checks.p99.pass;
}

/** Evaluates both SLO views over the completed requests of the measured window. */
export function evaluateSlo(columns: SloColumns, arrived: number, spec: SloSpec = SPLITWISE_SLO): SloResult {
  const completed = columns.ttft_slowdown.length;
  let meeting = 0;
  for (let i = 0; i < completed; i++) if (rowMeetsSlo(columns, i, spec)) meeting++;
  const denominator = Math.max(arrived, completed);
  const ttft = checkSlowdowns(columns.ttft_slowdown, spec.ttft_slowdown);
  const tbt = checkSlowdowns(columns.tbt_slowdown, spec.tbt_slowdown);
  const e2e = checkSlowdowns(columns.e2e_slowdown, spec.e2e_slowdown);
  return {
    attainment: denominator === 0 ? NaN : meeting / denominator,
    meeting,
    arrived: denominator,
    meets_splitwise_slo: allPass(ttft) && allPass(tbt) && allPass(e2e),
    thresholds: {
      ttft_slowdown: orderedThresholds(spec.ttft_slowdown),
      tbt_slowdown: orderedThresholds(spec.tbt_slowdown),
      e2e_slowdown: orderedThresholds(spec.e2e_slowdown),
      ttft_s: spec.ttft_s ?? null,
      tbt_s: spec.tbt_s ?? null,
    },
    per_percentile: { ttft_slowdown: ttft, tbt_slowdown: tbt, e2e_slowdown: e2e },
  };
}
