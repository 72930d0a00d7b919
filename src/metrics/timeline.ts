import type { MetricColumns } from "./collector.ts";
import { percentiles } from "./percentile.ts";
import { rowMeetsSlo, SPLITWISE_SLO, type SloSpec } from "./slo.ts";

/**
 * A run over time: one row per fixed interval of simulated time, so bursts, queue build-ups and an
 * autoscaler's reaction can be seen (the run summary averages them away). Built after the run from
 * the collector's per-request columns, so the simulation's hot path pays only for counting arrivals.
 *
 * Latency columns group requests by the interval they *arrived* in (what happened to the load of that
 * minute); throughput groups completions by when they completed. Rows cover the measured window
 * (from the warm-up on, the first row starting at the warm-up itself) up to the end of the run, so
 * their GPU-hours add up to the run's after the warm-up.
 */
export interface TimelineRow {
  readonly start_s: number;
  readonly end_s: number;
  /** Measured requests that arrived in the interval. */
  readonly arrived: number;
  /** Of those, the ones that completed before the run ended. */
  readonly completed: number;
  /** arrived / interval length. */
  readonly arrival_rate: number;
  /** Requests completing in the interval, per second. */
  readonly throughput: number;
  /** Output tokens of the requests completing in the interval, per second. */
  readonly output_tokens_per_s: number;
  readonly ttft_p50_s: number;
  readonly ttft_p90_s: number;
  readonly ttft_p99_s: number;
  readonly tbt_p50_s: number;
  readonly tbt_p99_s: number;
  readonly e2e_p50_s: number;
  readonly e2e_p99_s: number;
  readonly queue_p99_s: number;
  /** Arrivals of the interval meeting the per-request SLO / arrivals (unfinished ones miss); NaN without arrivals. */
  readonly slo_attainment: number;
  /** Time-mean number of instances allocated (starting, active and draining). */
  readonly instances: number;
  /** Time-mean number of GPUs allocated (every GPU of a provisioned server, as GPU-hours count them). */
  readonly gpus: number;
  readonly gpu_hours: number;
}

/** The column order of timeline.csv (the row's keys). */
export const TIMELINE_COLUMNS = [
  "start_s",
  "end_s",
  "arrived",
  "completed",
  "arrival_rate",
  "throughput",
  "output_tokens_per_s",
  "ttft_p50_s",
  "ttft_p90_s",
  "ttft_p99_s",
  "tbt_p50_s",
  "tbt_p99_s",
  "e2e_p50_s",
  "e2e_p99_s",
  "queue_p99_s",
  "slo_attainment",
  "instances",
  "gpus",
  "gpu_hours",
] as const satisfies readonly (keyof TimelineRow)[];

/**
 * Intervals kept in a dense array; later ones (a trace with a gap of years, or epoch timestamps) go
 * to a map, so a sparse far-off arrival costs one entry, not millions.
 */
const DENSE_INTERVALS = 1 << 20;

/**
 * Where interval `index` starts, as written to timeline.csv: `index × interval` rounded to 15
 * significant digits, so a fractional interval gives 10.1 rather than 10.100000000000001 (rows stay
 * contiguous: one row's end_s is the next one's start_s). Whole-second intervals are exact already.
 */
export function intervalBoundary(index: number, interval: number): number {
  const exact = index * interval;
  return Number.isInteger(interval) ? exact : Number(exact.toPrecision(15));
}

/**
 * The interval [boundary(k), boundary(k+1)) holding `time_s`. `time / interval` alone can fall just
 * below a whole number (10.3 / 0.1 = 102.99999999999999), which would count a time on a boundary in
 * the interval before it; near a boundary the time is compared with the boundary itself.
 */
export function intervalIndex(time_s: number, interval: number): number {
  const scaled = time_s / interval;
  const nearest = Math.round(scaled);
  if (Math.abs(scaled - nearest) > 1e-9) return Math.floor(scaled);
  return time_s >= intervalBoundary(nearest, interval) ? nearest : nearest - 1;
}

/** Counts events per fixed interval of time [k·interval, (k+1)·interval). */
export class IntervalCounter {
  private readonly counts: number[] = [];
  private readonly sparse = new Map<number, number>();

  constructor(readonly interval_s: number) {
    if (!(interval_s > 0 && Number.isFinite(interval_s)))
      throw new RangeError(`interval must be a positive number of seconds, got ${interval_s}`);
  }

  add(time_s: number): void {
    const index = Math.max(0, intervalIndex(time_s, this.interval_s));
    if (index >= DENSE_INTERVALS) {
      this.sparse.set(index, (this.sparse.get(index) ?? 0) + 1);
      return;
    }
    while (this.counts.length <= index) this.counts.push(0);
    this.counts[index]!++;
  }

  /** The count of interval `index` (0 beyond the last event). */
  at(index: number): number {
    return index < DENSE_INTERVALS ? (this.counts[index] ?? 0) : (this.sparse.get(index) ?? 0);
  }

  /** The same counts over intervals `factor` times as long. */
  coarsen(factor: number): IntervalCounter {
    const coarse = new IntervalCounter(this.interval_s * factor);
    const addCount = (index: number, count: number): void => {
      const target = Math.floor(index / factor);
      if (target < DENSE_INTERVALS) {
        while (coarse.counts.length <= target) coarse.counts.push(0);
        coarse.counts[target]! += count;
      } else {
        coarse.sparse.set(target, (coarse.sparse.get(target) ?? 0) + count);
      }
    };
    this.counts.forEach((count, index) => {
      if (count > 0) addCount(index, count);
    });
    for (const [index, count] of this.sparse) addCount(index, count);
    return coarse;
  }
}

/**
 * Most rows a timeline has. A run spanning more intervals (a trace with a long gap, or epoch
 * timestamps counted from 1970) gets proportionally longer intervals instead of running out of memory.
 */
export const MAX_TIMELINE_ROWS = 100_000;

/** Something that held resources from `start_s` to `end_s`, `weight` of them (1 instance, or a server's GPUs). */
export interface Occupancy {
  readonly start_s: number;
  readonly end_s: number;
  readonly weight: number;
}

export interface TimelineInput {
  readonly interval_s: number;
  readonly warmup_s: number;
  /** The end of the run (the last row ends here). */
  readonly end_s: number;
  /** Arrivals of the measured window, by interval. */
  readonly arrivals: IntervalCounter;
  /** The measured completed requests. */
  readonly columns: MetricColumns;
  readonly slo?: SloSpec;
  readonly instances: readonly Occupancy[];
  /** Servers, weighted by their GPUs. */
  readonly servers: readonly Occupancy[];
}

/** Where each row starts and stops (as written) and its length: whole rows are exactly `interval` long. */
interface RowBounds {
  readonly start: Float64Array;
  readonly stop: Float64Array;
  readonly length: Float64Array;
}

function rowBounds(interval: number, first: number, rows: number, warmup: number, end: number): RowBounds {
  const bounds = {
    start: new Float64Array(rows),
    stop: new Float64Array(rows),
    length: new Float64Array(rows),
  };
  for (let row = 0; row < rows; row++) {
    const lower = intervalBoundary(first + row, interval);
    const upper = intervalBoundary(first + row + 1, interval);
    // The first row starts at the warm-up itself when it falls inside an interval.
    const start = row === 0 ? Math.max(lower, warmup) : lower;
    const stop = Math.min(upper, end);
    bounds.start[row] = start;
    bounds.stop[row] = stop;
    // 10.2 − 10.1 is not 0.1 in floating point: a whole row divides by the interval itself.
    bounds.length[row] = start === lower && stop === upper ? interval : stop - start;
  }
  return bounds;
}

/**
 * Time each occupancy overlaps each row, summed with its weight (`seconds`: weight·seconds per row),
 * with the weight present for the whole row (`whole`) and the weight·seconds of the others
 * (`partial`): three instances over a whole 0.1 s row are 3, not 0.30000000000000004 / 0.1.
 */
interface RowOccupancy {
  readonly seconds: Float64Array;
  readonly whole: Float64Array;
  readonly partial: Float64Array;
}

function occupancyPerInterval(
  items: readonly Occupancy[],
  interval: number,
  first: number,
  bounds: RowBounds,
): RowOccupancy {
  const rows = bounds.start.length;
  const sums = new Float64Array(rows);
  const whole = new Float64Array(rows);
  const partial = new Float64Array(rows);
  for (const item of items) {
    const from = Math.max(item.start_s, bounds.start[0]!);
    const to = Math.min(item.end_s, bounds.stop[rows - 1]!);
    if (!(to > from)) continue;
    const last = Math.min(rows - 1, intervalIndex(to, interval) - first);
    for (let row = Math.max(0, intervalIndex(from, interval) - first); row <= last; row++) {
      const start = bounds.start[row]!;
      const stop = bounds.stop[row]!;
      if (from <= start && to >= stop) {
        sums[row]! += bounds.length[row]! * item.weight;
        whole[row]! += item.weight;
        continue;
      }
      const overlap = Math.min(to, stop) - Math.max(from, start);
      if (overlap > 0) {
        sums[row]! += overlap * item.weight;
        partial[row]! += overlap * item.weight;
      }
    }
  }
  return { seconds: sums, whole, partial };
}

/** The time-mean weight of one row: the whole-row weight itself when nothing came or went in it. */
function meanOccupancy(occupancy: RowOccupancy, row: number, length: number): number {
  if (!(length > 0)) return 0;
  return occupancy.partial[row] === 0 ? occupancy.whole[row]! : occupancy.seconds[row]! / length;
}

/** The interval a timeline over `input` uses: the configured one, widened to at most MAX_TIMELINE_ROWS rows. */
export function timelineInterval(input: Pick<TimelineInput, "interval_s" | "warmup_s" | "end_s">): number {
  const { interval_s: interval, warmup_s: warmup, end_s: end } = input;
  const rows = Math.ceil(end / interval) - Math.floor(warmup / interval);
  return rows > MAX_TIMELINE_ROWS ? interval * Math.ceil(rows / MAX_TIMELINE_ROWS) : interval;
}

export function buildTimeline(input: TimelineInput): TimelineRow[] {
  const { columns, end_s: end } = input;
  const interval = timelineInterval(input);
  const arrivals =
    interval === input.interval_s
      ? input.arrivals
      : input.arrivals.coarsen(Math.round(interval / input.interval_s));
  const slo = input.slo ?? SPLITWISE_SLO;
  const first = intervalIndex(input.warmup_s, interval);
  // The last row ends at the end of the run (an interval of its own unless the end is a boundary).
  const endIndex = intervalIndex(end, interval);
  const rows = Math.max(0, (intervalBoundary(endIndex, interval) === end ? endIndex : endIndex + 1) - first);
  const n = columns.count;
  if (rows === 0) return [];

  // Requests grouped by arrival interval with a counting sort: O(n) time and one index per request
  // (4 bytes; a 10-million-request run keeps its metrics columns in memory when this runs).
  const arrivalRow = (i: number): number =>
    Math.min(rows - 1, Math.max(0, intervalIndex(columns.arrival_s[i]!, interval) - first));
  const groupStart = new Int32Array(rows + 1);
  const completedPerRow = new Float64Array(rows);
  const outputTokensPerRow = new Float64Array(rows);
  for (let i = 0; i < n; i++) {
    groupStart[arrivalRow(i) + 1]!++;
    const completion = columns.arrival_s[i]! + columns.e2e_s[i]!;
    const doneRow = Math.min(rows - 1, Math.max(0, intervalIndex(completion, interval) - first));
    completedPerRow[doneRow]!++;
    outputTokensPerRow[doneRow]! += columns.output_tokens[i]!;
  }
  let largestGroup = 0;
  for (let row = 0; row < rows; row++) {
    largestGroup = Math.max(largestGroup, groupStart[row + 1]!);
    groupStart[row + 1]! += groupStart[row]!;
  }
  const order = new Int32Array(n);
  const cursor = groupStart.slice(0, rows);
  for (let i = 0; i < n; i++) order[cursor[arrivalRow(i)]!++] = i;

  const bounds = rowBounds(interval, first, rows, input.warmup_s, end);
  const instanceOccupancy = occupancyPerInterval(input.instances, interval, first, bounds);
  const gpuOccupancy = occupancyPerInterval(input.servers, interval, first, bounds);

  const scratch = new Float64Array(largestGroup);
  const quantilesOf = (
    column: ArrayLike<number>,
    from: number,
    to: number,
    qs: readonly number[],
  ): number[] => {
    for (let k = from; k < to; k++) scratch[k - from] = column[order[k]!]!;
    return percentiles(scratch.subarray(0, to - from), qs);
  };

  const out: TimelineRow[] = [];
  for (let row = 0; row < rows; row++) {
    const start = bounds.start[row]!;
    const stop = bounds.stop[row]!;
    const length = bounds.length[row]!;
    const from = groupStart[row]!;
    const to = groupStart[row + 1]!;
    const completed = to - from;
    // A request arriving exactly at the end of the run (its last event) on an interval boundary
    // belongs to the last row, which ends there.
    const arrivedHere = arrivals.at(first + row) + (row === rows - 1 ? arrivals.at(first + rows) : 0);
    const arrived = Math.max(arrivedHere, completed);
    let meeting = 0;
    for (let k = from; k < to; k++) if (rowMeetsSlo(columns, order[k]!, slo)) meeting++;
    const [ttft50 = NaN, ttft90 = NaN, ttft99 = NaN] = quantilesOf(
      columns.ttft_s,
      from,
      to,
      [0.5, 0.9, 0.99],
    );
    const [tbt50 = NaN, tbt99 = NaN] = quantilesOf(columns.tbt_s, from, to, [0.5, 0.99]);
    const [e2e50 = NaN, e2e99 = NaN] = quantilesOf(columns.e2e_s, from, to, [0.5, 0.99]);
    const [queue99 = NaN] = quantilesOf(columns.queue_s, from, to, [0.99]);
    out.push({
      start_s: start,
      end_s: stop,
      arrived,
      completed,
      arrival_rate: length > 0 ? arrived / length : 0,
      throughput: length > 0 ? completedPerRow[row]! / length : 0,
      output_tokens_per_s: length > 0 ? outputTokensPerRow[row]! / length : 0,
      ttft_p50_s: ttft50,
      ttft_p90_s: ttft90,
      ttft_p99_s: ttft99,
      tbt_p50_s: tbt50,
      tbt_p99_s: tbt99,
      e2e_p50_s: e2e50,
      e2e_p99_s: e2e99,
      queue_p99_s: queue99,
      slo_attainment: arrived > 0 ? meeting / arrived : NaN,
      instances: meanOccupancy(instanceOccupancy, row, length),
      gpus: meanOccupancy(gpuOccupancy, row, length),
      gpu_hours: gpuOccupancy.seconds[row]! / 3600,
    });
  }
  return out;
}

/** One row of timeline.csv; NaN (no request in the interval) is left empty, as pandas reads it. */
export function timelineCsvRow(row: TimelineRow): string {
  return TIMELINE_COLUMNS.map((column) => (Number.isNaN(row[column]) ? "" : String(row[column]))).join(",");
}

/** timeline.csv: a header and one row per interval. */
export function timelineCsv(rows: readonly TimelineRow[]): string {
  return `${[TIMELINE_COLUMNS.join(","), ...rows.map(timelineCsvRow)].join("\n")}\n`;
}
