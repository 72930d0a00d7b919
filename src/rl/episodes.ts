import { Rng } from "../core/rng.ts";
import type { LoadedConfig } from "../config/config.ts";
import { openConfiguredWorkload } from "../simulate/workload.ts";
import type { RequestSource, TraceRequest } from "../workload/types.ts";

/**
 * Episode workloads: the configured workload read once into typed arrays (a worker thread keeps it
 * for every episode it runs), replayed whole or as seeded random windows re-based to start at 0.
 */
export class WorkloadTable {
  readonly ids: Float64Array;
  readonly arrivals: Float64Array;
  readonly prompts: Int32Array;
  readonly outputs: Int32Array;

  constructor(
    requests: readonly TraceRequest[],
    readonly description: string,
  ) {
    this.ids = Float64Array.from(requests, (r) => r.id);
    this.arrivals = Float64Array.from(requests, (r) => r.arrival_s);
    this.prompts = Int32Array.from(requests, (r) => r.prompt_tokens);
    this.outputs = Int32Array.from(requests, (r) => r.output_tokens);
  }

  get length(): number {
    return this.arrivals.length;
  }

  get firstArrival_s(): number {
    return this.arrivals[0] ?? 0;
  }

  get lastArrival_s(): number {
    return this.arrivals[this.arrivals.length - 1] ?? 0;
  }

  /** Index of the first request arriving at or after `time_s`. */
  lowerBound(time_s: number): number {
    let low = 0;
    let high = this.arrivals.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.arrivals[mid]! < time_s) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /**
   * Requests arriving in [start_s, start_s + length_s), their arrival times shifted so `start_s`
   * maps to `lead_s` and divided by `speedup`; prompts multiplied by `promptScale` (rounded, at least
   * 1, at most the longest prompt of the table). Arrivals stop at lead_s + length_s / speedup.
   */
  window(start_s: number, length_s: number, lead_s = 0, speedup = 1, promptScale = 1): EpisodeWorkload {
    const from = this.lowerBound(start_s);
    const to = this.lowerBound(start_s + length_s);
    const { ids, arrivals, prompts, outputs } = this;
    const longest = this.longestPrompt;
    let next = from;
    const source: RequestSource = {
      description: `${this.description} [${start_s.toFixed(0)} s, +${length_s.toFixed(0)} s)${
        speedup === 1 && promptScale === 1
          ? ""
          : ` ×${speedup.toFixed(2)} rate, ×${promptScale.toFixed(2)} prompts`
      }`,
      next(): TraceRequest | undefined {
        if (next >= to) return undefined;
        const i = next++;
        const prompt = prompts[i]!;
        return {
          id: ids[i]!,
          arrival_s: (arrivals[i]! - start_s) / speedup + lead_s,
          prompt_tokens:
            promptScale === 1 ? prompt : Math.min(longest, Math.max(1, Math.round(prompt * promptScale))),
          output_tokens: outputs[i]!,
        };
      },
      close() {
        next = to;
      },
    };
    return { source, arrivalsEnd_s: lead_s + length_s / speedup, start_s, requests: to - from };
  }

  private longestCache = -1;

  get longestPrompt(): number {
    if (this.longestCache < 0)
      this.longestCache = this.prompts.reduce((max, prompt) => Math.max(max, prompt), 1);
    return this.longestCache;
  }

  /** The whole workload, unshifted. */
  whole(): EpisodeWorkload {
    const window = this.window(0, this.lastArrival_s + 1e-6, 0);
    return { ...window, arrivalsEnd_s: this.lastArrival_s };
  }

  /**
   * A window of `length_s` at a seeded random offset (the whole workload when it is shorter), with
   * the rate and prompt multipliers drawn from `rateScale` and `promptScale` ([low, high]).
   */
  randomWindow(
    seed: number,
    length_s: number,
    rateScale: readonly [number, number] = [1, 1],
    promptScale: readonly [number, number] = [1, 1],
  ): EpisodeWorkload {
    const rng = new Rng(seed).fork("episode-window");
    // Separate forks: the offset stream is the same with or without randomization.
    const draw = (range: readonly [number, number], label: string): number =>
      range[0] === range[1] ? range[0] : range[0] + (range[1] - range[0]) * rng.fork(label).nextFloat();
    const speedup = draw(rateScale, "rate");
    const prompts = draw(promptScale, "prompt");
    const first = this.firstArrival_s;
    const span = this.lastArrival_s - first;
    const source_s = length_s * speedup;
    if (span <= source_s) {
      const whole = this.window(first, span + 1e-6, 0, speedup, prompts);
      return { ...whole, arrivalsEnd_s: span / speedup };
    }
    const start = first + rng.nextFloat() * (span - source_s);
    return this.window(start, source_s, 0, speedup, prompts);
  }
}

/** A request stream for one episode and when its arrivals stop. */
export interface EpisodeWorkload {
  readonly source: RequestSource;
  /** Simulated time of the end of arrivals (the episode then drains). */
  readonly arrivalsEnd_s: number;
  /** Where the window starts in the original workload (0 for the whole). */
  readonly start_s: number;
  readonly requests: number;
}

const tables = new Map<string, WorkloadTable>();

/** The configured workload as a table, read once per process (worker threads reuse it). */
export function workloadTable(loaded: LoadedConfig): WorkloadTable {
  const key = JSON.stringify({ workload: loaded.config.workload ?? null, baseDir: loaded.baseDir });
  let table = tables.get(key);
  if (table === undefined) {
    const source = openConfiguredWorkload(loaded.config, loaded.baseDir);
    const requests: TraceRequest[] = [];
    try {
      for (let request = source.next(); request !== undefined; request = source.next())
        requests.push({
          id: request.id,
          arrival_s: request.arrival_s,
          prompt_tokens: request.prompt_tokens,
          output_tokens: request.output_tokens,
        });
    } finally {
      source.close();
    }
    table = new WorkloadTable(requests, source.description);
    tables.set(key, table);
  }
  return table;
}
