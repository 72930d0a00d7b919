import type { RequestRecord, UnloadedLatencyFn } from "./types.ts";

/** Receives every finished request, e.g. to stream `requests.csv` without the collector keeping records. */
export interface RequestRowSink {
  write(record: RequestRecord): void;
}

export interface RequestMetricsCollectorOptions {
  /** Requests arriving before this time are counted but kept out of latency and SLO statistics. */
  readonly warmup_s?: number;
  /** Rows to allocate up front; pass the trace length to avoid any regrowth. */
  readonly initial_capacity?: number;
  /** Gets every recorded request, warm-up ones included. */
  readonly sink?: RequestRowSink;
}

/**
 * Per-request columns of the measured (post-warm-up) completed requests, in completion order.
 * The arrays are views of the collector's storage, valid until the next `record` call.
 */
export interface MetricColumns {
  readonly count: number;
  readonly arrival_s: Float64Array;
  readonly queue_s: Float64Array;
  readonly ttft_s: Float64Array;
  readonly tbt_s: Float64Array;
  readonly e2e_s: Float64Array;
  readonly nth_token_overhead_s: Float64Array;
  readonly prompt_tokens: Int32Array;
  readonly output_tokens: Int32Array;
  /** ttft / unloaded ttft. */
  readonly ttft_slowdown: Float32Array;
  /** tbt / unloaded tbt. */
  readonly tbt_slowdown: Float32Array;
  /** e2e / (unloaded ttft + unloaded tbt · (output tokens − 1)). */
  readonly e2e_slowdown: Float32Array;
}

/** Request counts over the whole run and over the measured window. */
export interface RequestCounts {
  /** Every arrival reported through `noteArrival`. */
  readonly arrived: number;
  /** Every recorded completion. */
  readonly completed: number;
  /** Arrivals at or after `warmup_s`. */
  readonly measured_arrived: number;
  /** Completions of requests that arrived at or after `warmup_s` (the rows of `columns()`). */
  readonly measured_completed: number;
}

const DEFAULT_INITIAL_CAPACITY = 4096;
/**
 * Columns double until this many rows, then grow by a quarter: doubling a 10-million-row store would
 * over-allocate up to 2x (over 1 GB), a quarter bounds the slack at 25 % while keeping appends
 * amortised O(1).
 */
const DOUBLING_LIMIT = 1 << 22;

function grownCapacity(current: number, needed: number): number {
  const grown = current < DOUBLING_LIMIT ? current * 2 : Math.ceil(current * 1.25);
  return Math.max(grown, needed, 16);
}

function growFloat64(column: Float64Array, capacity: number): Float64Array {
  const grown = new Float64Array(capacity);
  grown.set(column);
  return grown;
}

function growFloat32(column: Float32Array, capacity: number): Float32Array {
  const grown = new Float32Array(capacity);
  grown.set(column);
  return grown;
}

function growInt32(column: Int32Array, capacity: number): Int32Array {
  const grown = new Int32Array(capacity);
  grown.set(column);
  return grown;
}

/**
 * Accumulates what the run summary needs, one request at a time, in growable typed-array columns
 * (68 bytes per measured request: six float64 times, two int32 sizes, three float32 slowdowns), so
 * 10 million requests fit in about 0.7 GB. Slowdowns are computed at record time, so the unloaded
 * latency model is not needed afterwards; float32 keeps ~7 significant digits, plenty for ratios
 * compared against thresholds like 1.25. Full records are never kept: pass a `sink` to stream them.
 */
export class RequestMetricsCollector {
  readonly warmup_s: number;
  private readonly unloadedLatency: UnloadedLatencyFn;
  private readonly sink: RequestRowSink | undefined;

  private capacity: number;
  private size = 0;
  private arrival: Float64Array;
  private queue: Float64Array;
  private ttft: Float64Array;
  private tbt: Float64Array;
  private e2e: Float64Array;
  private nthTokenOverhead: Float64Array;
  private promptTokens: Int32Array;
  private outputTokens: Int32Array;
  private ttftSlowdown: Float32Array;
  private tbtSlowdown: Float32Array;
  private e2eSlowdown: Float32Array;

  private arrivedCount = 0;
  private measuredArrivedCount = 0;
  private completedCount = 0;
  private preemptionCount = 0;
  private measuredOutputTokenSum = 0;
  private lastCompletion = -Infinity;

  constructor(unloadedLatency: UnloadedLatencyFn, options: RequestMetricsCollectorOptions = {}) {
    this.unloadedLatency = unloadedLatency;
    this.warmup_s = options.warmup_s ?? 0;
    this.sink = options.sink;
    this.capacity = Math.max(1, Math.floor(options.initial_capacity ?? DEFAULT_INITIAL_CAPACITY));
    this.arrival = new Float64Array(this.capacity);
    this.queue = new Float64Array(this.capacity);
    this.ttft = new Float64Array(this.capacity);
    this.tbt = new Float64Array(this.capacity);
    this.e2e = new Float64Array(this.capacity);
    this.nthTokenOverhead = new Float64Array(this.capacity);
    this.promptTokens = new Int32Array(this.capacity);
    this.outputTokens = new Int32Array(this.capacity);
    this.ttftSlowdown = new Float32Array(this.capacity);
    this.tbtSlowdown = new Float32Array(this.capacity);
    this.e2eSlowdown = new Float32Array(this.capacity);
  }

  /** Counts one arrival; unfinished requests are arrivals without a matching `record`. */
  noteArrival(arrival_s: number): void {
    this.arrivedCount++;
    if (arrival_s >= this.warmup_s) this.measuredArrivedCount++;
  }

  /** Records one completed request. */
  record(request: RequestRecord): void {
    this.completedCount++;
    this.preemptionCount += request.preemptions;
    const completion = request.arrival_s + request.e2e_s;
    if (completion > this.lastCompletion) this.lastCompletion = completion;
    this.sink?.write(request);
    if (request.arrival_s < this.warmup_s) return;

    if (this.size === this.capacity) this.grow(this.size + 1);
    const row = this.size++;
    this.arrival[row] = request.arrival_s;
    this.queue[row] = request.queue_s;
    this.ttft[row] = request.ttft_s;
    this.tbt[row] = request.tbt_s;
    this.e2e[row] = request.e2e_s;
    this.nthTokenOverhead[row] = request.nth_token_overhead_s;
    this.promptTokens[row] = request.prompt_tokens;
    this.outputTokens[row] = request.output_tokens;
    this.measuredOutputTokenSum += request.output_tokens;

    const unloaded = this.unloadedLatency(request.prompt_tokens, request.output_tokens);
    const unloadedE2e = unloaded.ttft_s + unloaded.tbt_s * (request.output_tokens - 1);
    this.ttftSlowdown[row] = request.ttft_s / unloaded.ttft_s;
    this.tbtSlowdown[row] = request.tbt_s / unloaded.tbt_s;
    this.e2eSlowdown[row] = request.e2e_s / unloadedE2e;
  }

  counts(): RequestCounts {
    return {
      arrived: this.arrivedCount,
      completed: this.completedCount,
      measured_arrived: this.measuredArrivedCount,
      measured_completed: this.size,
    };
  }

  /** Sum of `preemptions` over every recorded request. */
  get preemptions(): number {
    return this.preemptionCount;
  }

  /** Output tokens of the measured completed requests. */
  get measuredOutputTokens(): number {
    return this.measuredOutputTokenSum;
  }

  /** Latest completion time (arrival + e2e) seen; -Infinity before the first record. */
  get last_completion_s(): number {
    return this.lastCompletion;
  }

  /** Rows currently allocated per column (for tests and memory accounting). */
  get allocatedRows(): number {
    return this.capacity;
  }

  /** Views of the measured rows; copy them before recording more requests if they must persist. */
  columns(): MetricColumns {
    const n = this.size;
    return {
      count: n,
      arrival_s: this.arrival.subarray(0, n),
      queue_s: this.queue.subarray(0, n),
      ttft_s: this.ttft.subarray(0, n),
      tbt_s: this.tbt.subarray(0, n),
      e2e_s: this.e2e.subarray(0, n),
      nth_token_overhead_s: this.nthTokenOverhead.subarray(0, n),
      prompt_tokens: this.promptTokens.subarray(0, n),
      output_tokens: this.outputTokens.subarray(0, n),
      ttft_slowdown: this.ttftSlowdown.subarray(0, n),
      tbt_slowdown: this.tbtSlowdown.subarray(0, n),
      e2e_slowdown: this.e2eSlowdown.subarray(0, n),
    };
  }

  private grow(needed: number): void {
    const capacity = grownCapacity(this.capacity, needed);
    this.arrival = growFloat64(this.arrival, capacity);
    this.queue = growFloat64(this.queue, capacity);
    this.ttft = growFloat64(this.ttft, capacity);
    this.tbt = growFloat64(this.tbt, capacity);
    this.e2e = growFloat64(this.e2e, capacity);
    this.nthTokenOverhead = growFloat64(this.nthTokenOverhead, capacity);
    this.promptTokens = growInt32(this.promptTokens, capacity);
    this.outputTokens = growInt32(this.outputTokens, capacity);
    this.ttftSlowdown = growFloat32(this.ttftSlowdown, capacity);
    this.tbtSlowdown = growFloat32(this.tbtSlowdown, capacity);
    this.e2eSlowdown = growFloat32(this.e2eSlowdown, capacity);
    this.capacity = capacity;
  }
}
