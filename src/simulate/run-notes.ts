import type { SimulationConfig } from "../config/config.ts";
import { MAX_TIMELINE_ROWS } from "../metrics/timeline.ts";
import type { RunResult } from "./run.ts";

/** A first arrival later than this suggests absolute (epoch) timestamps. */
const LATE_FIRST_ARRIVAL_S = 86_400;

/**
 * Said before the run starts: a trace with absolute timestamps would simulate (and bill) years of an
 * idle fleet first, and an autoscaled run would tick its policy through them.
 */
export function lateFirstArrivalNote(firstArrival_s: number): string | undefined {
  if (!(firstArrival_s > LATE_FIRST_ARRIVAL_S)) return undefined;
  return (
    `the first request arrives at ${firstArrival_s.toFixed(0)} s (${(firstArrival_s / 86_400).toFixed(1)} days): if the trace has ` +
    `absolute timestamps, set workload.start_s to its first timestamp, since the fleet and its GPU-hours count from t = 0`
  );
}

/**
 * What a user should hear about a finished run that its numbers alone hide: nothing arrived, or
 * timeline.csv had to use longer intervals.
 */
export function runNotes(config: SimulationConfig, result: RunResult): string[] {
  const notes: string[] = [];
  const { outcome, summary } = result;
  if (outcome.arrived === 0) {
    notes.push(
      "no request arrived: the workload is empty (check the trace, workload.limit, workload.start_s/end_s or num_requests)",
    );
  } else if (summary.requests.measured === 0 && summary.requests.unfinished === 0) {
    notes.push(
      `no request arrived after metrics.warmup_s (${config.metrics.warmup_s} s), so no latency is measured`,
    );
  }
  const timeline = result.timeline;
  if (timeline !== undefined && timeline.length > 0) {
    const used = timeline[0]!.end_s - timeline[0]!.start_s;
    const configured = config.metrics.timeline_interval_s;
    if (timeline.length > 1 && used > configured * 1.000001) {
      notes.push(
        `timeline.csv uses ${used} s intervals instead of metrics.timeline_interval_s (${configured} s): ` +
          `the run spans ${outcome.endTime_s.toFixed(0)} s and a timeline has at most ${MAX_TIMELINE_ROWS.toLocaleString("en-US")} rows`,
      );
    }
  }
  return notes;
}
