import { UsageError } from "../errors.ts";
import type { ArrivalProcess } from "./arrivals.ts";
import type { LengthSampler } from "./lengths.ts";
import type { RequestSource, TraceRequest } from "./types.ts";

export interface GeneratorLimits {
  /** Stop before the first arrival at or after this time. */
  readonly duration_s?: number;
  /** Stop after this many requests. */
  readonly num_requests?: number;
}

/**
 * Synthetic requests: arrival times from a process, lengths from a sampler, ids 0, 1, 2, ...
 * Apart from the returned object a request allocates nothing, so ten million of them stream freely.
 */
export class SyntheticSource implements RequestSource {
  readonly description: string;
  readonly maxRequests?: number;
  private readonly duration_s: number;
  private readonly numRequests: number;
  private produced = 0;
  private finished = false;

  constructor(
    private readonly arrivals: ArrivalProcess,
    private readonly lengths: LengthSampler,
    limits: GeneratorLimits,
    /** Processes that end by themselves (steps) need no limit. */
    endsByItself = false,
  ) {
    const { duration_s, num_requests } = limits;
    if (duration_s !== undefined && !(duration_s > 0))
      throw new UsageError(`duration_s must be a positive number, got ${duration_s}`);
    if (num_requests !== undefined && !(Number.isInteger(num_requests) && num_requests >= 0)) {
      throw new UsageError(`num_requests must be a non-negative integer, got ${num_requests}`);
    }
    if (duration_s === undefined && num_requests === undefined && !endsByItself) {
      throw new UsageError(
        `the ${arrivals.description} generator never ends: set duration_s or num_requests`,
      );
    }
    this.duration_s = duration_s ?? Number.POSITIVE_INFINITY;
    this.numRequests = num_requests ?? Number.POSITIVE_INFINITY;
    if (num_requests !== undefined) this.maxRequests = num_requests;
    this.description = `${arrivals.description}; ${lengths.description}`;
  }

  next(): TraceRequest | undefined {
    if (this.finished) return undefined;
    if (this.produced >= this.numRequests) return this.finish();
    const arrival_s = this.arrivals.next();
    if (!(arrival_s < this.duration_s)) return this.finish();
    this.lengths.draw();
    return {
      id: this.produced++,
      arrival_s,
      prompt_tokens: this.lengths.prompt_tokens,
      output_tokens: this.lengths.output_tokens,
    };
  }

  close(): void {
    this.finished = true;
  }

  private finish(): undefined {
    this.finished = true;
    return undefined;
  }
}
