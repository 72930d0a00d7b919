/** One request as a workload describes it, before the simulator gives it any state. */
export interface TraceRequest {
  /** Stable id from the trace (or the generator's running index). */
  readonly id: number;
  /** Arrival time in seconds from the start of the simulation. */
  readonly arrival_s: number;
  /** Prompt (context) length in tokens, >= 1. */
  readonly prompt_tokens: number;
  /** Output length in tokens, >= 1 (the first token is produced by the prefill). */
  readonly output_tokens: number;
  /** Optional prefix-cache block hashes (Mooncake traces). */
  readonly hash_ids?: readonly number[];
}

/**
 * A pull-based, synchronous stream of requests in non-decreasing arrival order.
 * The simulator pulls the next request only when the previous one arrives, so a trace of any
 * length is held in memory one chunk at a time.
 */
export interface RequestSource {
  /** Human-readable origin used in messages, e.g. a file path or "poisson(rate=5)". */
  readonly description: string;
  /** The next request, or undefined at the end. Throws WorkloadError on malformed input. */
  next(): TraceRequest | undefined;
  /** Release file handles early (idempotent). */
  close(): void;
  /** At most this many requests will come, when that is known up front (a generator's num_requests). */
  readonly maxRequests?: number;
}
