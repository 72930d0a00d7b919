import { UsageError } from "../errors.ts";
import type { PolicyPool } from "./registry.ts";
import type { SlaConfig } from "./sla.ts";

/**
 * The `sla` planner's capacity models: what one replica of a pool can do, and how many replicas a
 * traffic rate needs to hold the TTFT (prefill, M/M/n) and TBT (decode, Little's law and M/M/c over
 * KV slots) budgets. Pure functions of rates, sizes and the pool's performance model.
 */

export interface PoolPerformance {
  /** Prompt tokens per second one replica prefills at its token budget. */
  readonly prefillTokensPerS: number;
  /** Unloaded prefill seconds of a prompt of this many tokens. */
  readonly prefillS: (tokens: number) => number;
  /** Seconds of one decode step at a moderate batch. */
  readonly decodeStepS: (batch: number, context: number) => number;
}

/** What one replica of a pool can do, from its performance model (or the config without one). */
export function slaPerformance(pool: PolicyPool, config: SlaConfig, where: string): PoolPerformance {
  const latency = pool.latency;
  if (latency === undefined) {
    if (config.prefill_tokens_per_s === undefined || config.decode_step_s === undefined) {
      throw new UsageError(
        `${where}: pool ${pool.name} has no performance model; set prefill_tokens_per_s and decode_step_s (measure them with \`splitscale perf\`)`,
      );
    }
    const step = config.decode_step_s;
    const rate = config.prefill_tokens_per_s;
    return { prefillTokensPerS: rate, prefillS: (tokens) => tokens / rate, decodeStepS: () => step };
  }
  const budget = pool.capacity?.maxBatchTokens ?? 2048;
  const prefillTime = latency.iterationTime({
    prefillTokens: budget,
    numPrefill: 1,
    numDecode: 0,
    decodeContextTokens: 0,
  });
  return {
    prefillTokensPerS: budget / prefillTime,
    prefillS: (tokens) =>
      latency.iterationTime({ prefillTokens: tokens, numPrefill: 1, numDecode: 0, decodeContextTokens: 0 }),
    decodeStepS: (batch, context) =>
      latency.iterationTime({
        prefillTokens: 0,
        numPrefill: 0,
        numDecode: Math.max(1, Math.round(batch)),
        decodeContextTokens: Math.max(1, Math.round(batch)) * context,
      }),
  };
}

/**
 * The share of a burst's arrival rate that decode holds at once. A burst of rate B lasting `burst_s`
 * brings B·burst_s requests, each in decode for T = output × step: B·min(burst_s, T) of them at once,
 * as a rate for Little's law B × min(1, burst_s / T). Long outputs see a short burst smoothed.
 */
export function decodeSpikeShare(
  burst_s: number,
  meanOutput: number,
  meanPrompt: number,
  performance: PoolPerformance,
): number {
  const decodeTime = meanOutput * performance.decodeStepS(1, meanPrompt + meanOutput);
  if (!(decodeTime > 0) || !(burst_s > 0)) return 1;
  return Math.min(1, burst_s / decodeTime);
}

/**
 * KV-cache tokens held by requests in decode, by Little's law: requests decoding at once (arrival
 * rate × output tokens × step time) × KV tokens each (long outputs stay longer, hence the size
 * bias). The step time depends a little on the batch: two fixed-point rounds are plenty.
 */
export function decodeKvDemand(
  requestsPerS: number,
  meanPrompt: number,
  meanOutput: number,
  replicas: number,
  performance: PoolPerformance,
  config: SlaConfig,
): number {
  const tokensPerRequest = meanPrompt + meanOutput;
  let inFlight = requestsPerS * meanOutput * performance.decodeStepS(1, tokensPerRequest);
  for (let round = 0; round < 2; round++) {
    const batch = inFlight / Math.max(replicas, 1);
    inFlight = requestsPerS * meanOutput * performance.decodeStepS(batch, tokensPerRequest);
  }
  return inFlight * tokensPerRequest * config.decode_size_bias;
}

/**
 * A high quantile of the KV demand. Requests in decode form an M/G/∞ population: their number is
 * Poisson (variance = mean) and each holds a size-variable share of tokens, so the spread of the
 * held tokens is √(in flight) × E[tokens] × √(1 + cv²); plan for mean + z·spread.
 */
export function decodeKvHigh(meanKv: number, tokensPerRequest: number, config: SlaConfig): number {
  if (meanKv <= 0 || tokensPerRequest <= 0) return Math.max(0, meanKv);
  const inFlight = meanKv / tokensPerRequest;
  const spread = Math.sqrt(inFlight) * tokensPerRequest * Math.sqrt(1 + config.decode_size_cv ** 2);
  return meanKv + config.decode_overflow_z * spread;
}

/**
 * Decode replicas for steady traffic, from the TBT SLO (the decode counterpart of `prefillReplicas`).
 * A replica holds `slots` requests at once: its KV tokens at `decode_kv_utilization` over the KV
 * tokens of one request (prompt + output, `decode_size_bias`). Requests that find every slot taken
 * wait for KV room (Splitwise's scheduler lets the KV shipment wait), and a request may wait
 * (tbt_slowdown − 1) decode times before its TBT slowdown exceeds the SLO. With the requests in
 * decode at once (Little's law) as the offered load, the M/M/c tail C(c, a)·exp(−(c − a)·(s − 1))
 * must stay under `tbt_miss_target`; the high quantile of `decode_overflow_z` is a floor.
 */
export function decodeReplicas(
  requestsPerS: number,
  meanPrompt: number,
  meanOutput: number,
  replicas: number,
  maxKvTokens: number,
  performance: PoolPerformance,
  config: SlaConfig,
  utilization = config.decode_kv_utilization,
  calibration = 1,
): number {
  if (maxKvTokens <= 0 || requestsPerS <= 0) return 0;
  const demand =
    decodeKvDemand(requestsPerS, meanPrompt, meanOutput, replicas, performance, config) * calibration;
  const tokensPerRequest = (meanPrompt + meanOutput) * config.decode_size_bias * calibration;
  const load = demand / tokensPerRequest;
  const slots = Math.max(1, Math.floor((maxKvTokens * utilization) / tokensPerRequest));
  const waits = config.tbt_slowdown - 1;
  let replicasNeeded = Math.max(1, Math.ceil(load / slots - 1e-9));
  for (; replicasNeeded < 10_000; replicasNeeded++) {
    const servers = replicasNeeded * slots;
    if (
      servers > load &&
      erlangC(servers, load) * Math.exp(-(servers - load) * waits) <= config.tbt_miss_target
    )
      break;
  }
  if (config.decode_overflow_z <= 0) return replicasNeeded;
  // The stricter rule: hold a high quantile of the demand at once, without queueing.
  const high = decodeKvHigh(demand, meanPrompt + meanOutput, config);
  return Math.max(replicasNeeded, Math.ceil(high / (maxKvTokens * utilization) - 1e-9));
}

/**
 * Erlang C: probability that an arrival waits, for `servers` servers offered `load` Erlangs
 * (load < servers). Computed with the stable recurrence over the Erlang-B blocking probability.
 */
export function erlangC(servers: number, load: number): number {
  if (load <= 0) return 0;
  if (load >= servers) return 1;
  let blocking = 1;
  for (let k = 1; k <= servers; k++) blocking = (load * blocking) / (k + load * blocking);
  return blocking / (1 - (load / servers) * (1 - blocking));
}

/**
 * Prefill replicas so that the fraction of prompts waiting longer than their TTFT budget stays under
 * `ttft_miss_target` (autoscalers spec §9.2: queueing headroom from the SLO instead of a magic
 * utilization). M/M/n tail: P(W > t) = C(n, a)·exp(−(n − a)·t / E[S]), with E[S] the mean prefill
 * time and a prompt of p tokens allowed to wait (slowdown − 1)·prefill(p). The miss rate is averaged
 * over an exponential prompt-size distribution with the observed mean.
 */
export function prefillReplicas(
  promptTokensPerS: number,
  requestsPerS: number,
  meanPrompt: number,
  performance: PoolPerformance,
  missTarget: number,
  config: SlaConfig,
): number {
  if (promptTokensPerS <= 0 || requestsPerS <= 0) return 0;
  const meanService = meanPrompt / performance.prefillTokensPerS;
  const load = promptTokensPerS / performance.prefillTokensPerS;
  const quantiles = 16;
  const budgets: number[] = [];
  for (let i = 0; i < quantiles; i++) {
    const prompt = Math.max(1, -meanPrompt * Math.log(1 - (i + 0.5) / quantiles));
    budgets.push((config.ttft_slowdown - 1) * performance.prefillS(prompt));
  }
  let servers = Math.max(1, Math.ceil(load / config.max_prefill_utilization));
  for (; servers < 10_000; servers++) {
    const wait = erlangC(servers, load);
    let miss = 0;
    for (const budget of budgets) miss += wait * Math.exp((-(servers - load) * budget) / meanService);
    if (miss / quantiles <= missTarget) break;
  }
  return servers;
}
