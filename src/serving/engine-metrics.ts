/**
 * What a serving engine on one instance would expose on its /metrics page: cumulative counters and
 * histograms since the instance started (vLLM's names, without the `vllm:` prefix). The simulator
 * fills them at task completions (never per iteration), and the autoscaling observer scrapes them.
 */

/** vLLM's TTFT histogram buckets (seconds). */
export const TTFT_BUCKETS_S = [
  0.001,
  0.005,
  0.01,
  0.02,
  0.04,
  0.06,
  0.08,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
  20,
  40,
  80,
  160,
  640,
  2560,
  Infinity,
];
/** vLLM's inter-token-latency histogram buckets (seconds). */
export const ITL_BUCKETS_S = [
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.15,
  0.2,
  0.3,
  0.4,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
  20,
  40,
  80,
  Infinity,
];
/** vLLM's end-to-end latency histogram buckets (seconds). */
export const E2E_BUCKETS_S = [
  0.3,
  0.5,
  0.8,
  1,
  1.5,
  2,
  2.5,
  5,
  10,
  15,
  20,
  30,
  40,
  50,
  60,
  120,
  240,
  480,
  960,
  1920,
  7680,
  Infinity,
];

/** A cumulative-count histogram with fixed upper bounds (the last is +Infinity). */
export class Histogram {
  /** counts[i] = observations in (le[i-1], le[i]] (not cumulative; cumulated when scraped). */
  readonly counts: Float64Array;
  count = 0;
  sum = 0;

  constructor(readonly le: readonly number[]) {
    this.counts = new Float64Array(le.length);
  }

  /** Records `weight` observations of `value` (weight > 1 stands for several equal observations). */
  observe(value: number, weight = 1): void {
    // The first bucket whose bound is >= value (the last one catches the rest, NaN lands in the
    // first): a binary search, since every completion in a simulation observes three histograms.
    const le = this.le;
    let index = 0;
    let high = le.length - 1;
    while (index < high) {
      const mid = (index + high) >> 1;
      if (value > le[mid]!) index = mid + 1;
      else high = mid;
    }
    this.counts[index]! += weight;
    this.count += weight;
    this.sum += value * weight;
  }

  cumulative(): number[] {
    const out: number[] = [];
    let running = 0;
    for (const count of this.counts) out.push((running += count));
    return out;
  }
}

export class EngineMetrics {
  promptTokens = 0;
  generationTokens = 0;
  requestsCompleted = 0;
  readonly ttft = new Histogram(TTFT_BUCKETS_S);
  readonly itl = new Histogram(ITL_BUCKETS_S);
  readonly e2e = new Histogram(E2E_BUCKETS_S);
}
