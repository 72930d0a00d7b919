/** What the simulator reports for every finished request (times in seconds). */
export interface RequestRecord {
  readonly id: number;
  readonly arrival_s: number;
  readonly prompt_tokens: number;
  readonly output_tokens: number;
  /** Prompt start minus arrival: scheduler back-pressure plus instance queueing. */
  readonly queue_s: number;
  /** First token (end of the prefill iteration) minus arrival. */
  readonly ttft_s: number;
  /** Completion minus arrival. */
  readonly e2e_s: number;
  /** Mean time between output tokens after the first; see docs for the upstream divisor flag. */
  readonly tbt_s: number;
  /** Token-task start minus prompt completion: KV transfer plus the wait for a decode slot. */
  readonly nth_token_overhead_s: number;
  /** Times the request's decode task was preempted (evicted from a running batch). */
  readonly preemptions: number;
}

/** Latency of a request on an otherwise idle instance, used for slowdowns and SLOs. */
export interface UnloadedLatency {
  readonly ttft_s: number;
  readonly tbt_s: number;
}

/** Maps a request's sizes to its unloaded latencies under the run's reference performance model. */
export type UnloadedLatencyFn = (prompt_tokens: number, output_tokens: number) => UnloadedLatency;

/** Percentile summary of one metric. */
export interface Distribution {
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}
