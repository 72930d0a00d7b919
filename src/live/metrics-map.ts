/**
 * Engine metric names → the names policies read (`GAUGES`, `COUNTERS`, `HISTOGRAMS` in
 * src/policy/types.ts). vLLM (V1) and SGLang names are both read; the first name present wins, so a
 * vLLM that still emits the deprecated `vllm:gpu_cache_usage_perc` next to `vllm:kv_cache_usage_perc`
 * is read once. The table is exported for docs/live.md and the tests.
 */
import {
  COUNTERS,
  GAUGES,
  HISTOGRAMS,
  type HistogramSnapshot,
  type ReplicaMetrics,
} from "../policy/types.ts";
import { combineOf, histogramOf, sumOf, type Combine } from "./prometheus/aggregate.ts";
import type { ParsedPage } from "./prometheus/parser.ts";

export interface GaugeSource {
  readonly names: readonly string[];
  /** How label sets (several models or data-parallel engines on one replica) combine. */
  readonly combine: Combine;
  /** Multiplier to the policy's unit (e.g. a 0..1 fraction to percent). */
  readonly scale?: number;
}

export const GAUGE_SOURCES: Readonly<Record<string, GaugeSource>> = {
  [GAUGES.running]: { names: ["vllm:num_requests_running", "sglang:num_running_reqs"], combine: "sum" },
  [GAUGES.waiting]: { names: ["vllm:num_requests_waiting", "sglang:num_queue_reqs"], combine: "sum" },
  [GAUGES.kvCacheUsage]: {
    names: ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"],
    combine: "max",
  },
  [GAUGES.gpuUtilization]: {
    // The emulated engine's own gauge, then NVIDIA DCGM exporter's (both percent 0..100).
    names: ["splitscale:gpu_utilization_perc", "DCGM_FI_DEV_GPU_UTIL"],
    combine: "mean",
  },
  [GAUGES.pendingPrefillTokens]: { names: ["splitscale:pending_prefill_tokens"], combine: "sum" },
  [GAUGES.concurrent]: { names: ["splitscale:concurrent_requests"], combine: "sum" },
};

export const COUNTER_SOURCES: Readonly<Record<string, readonly string[]>> = {
  [COUNTERS.promptTokens]: ["vllm:prompt_tokens_total", "sglang:prompt_tokens_total"],
  [COUNTERS.generationTokens]: ["vllm:generation_tokens_total", "sglang:generation_tokens_total"],
  [COUNTERS.requestsCompleted]: ["vllm:request_success_total", "sglang:num_requests_total"],
};

export const HISTOGRAM_SOURCES: Readonly<Record<string, readonly string[]>> = {
  [HISTOGRAMS.ttft]: ["vllm:time_to_first_token_seconds", "sglang:time_to_first_token_seconds"],
  [HISTOGRAMS.itl]: [
    "vllm:inter_token_latency_seconds",
    "vllm:time_per_output_token_seconds",
    "sglang:inter_token_latency_seconds",
    "sglang:time_per_output_token_seconds",
  ],
  [HISTOGRAMS.e2e]: ["vllm:e2e_request_latency_seconds", "sglang:e2e_request_latency_seconds"],
};

/** Counter of busy GPU seconds (the emulated engine's); its rate ×100 is GPU utilization in percent. */
export const GPU_BUSY_COUNTER = "splitscale:gpu_busy_seconds_total";

/** Names consumed by the mapping (other gauges are passed through under their own name). */
const MAPPED = new Set<string>([
  ...Object.values(GAUGE_SOURCES).flatMap((source) => source.names),
  ...Object.values(COUNTER_SOURCES).flat(),
]);

export interface MappedMetrics {
  readonly metrics: ReplicaMetrics;
  /** Recognized engine metrics found on the page (0 = not an engine page we know). */
  readonly recognized: number;
  /** Histograms that were present but inconsistent, by policy name. */
  readonly problems: readonly string[];
}

/** Builds a replica's metrics from one parsed page. */
export function mapEngineMetrics(page: ParsedPage): MappedMetrics {
  const gauges: Record<string, number> = {};
  const counters: Record<string, number> = {};
  const histograms: Record<string, HistogramSnapshot> = {};
  const problems: string[] = [];
  let recognized = 0;

  for (const [name, source] of Object.entries(GAUGE_SOURCES)) {
    for (const exposed of source.names) {
      const value = combineOf(page, exposed, source.combine);
      if (value === undefined) continue;
      gauges[name] = value * (source.scale ?? 1);
      recognized++;
      break;
    }
  }
  const running = gauges[GAUGES.running];
  const waiting = gauges[GAUGES.waiting];
  if (gauges[GAUGES.concurrent] === undefined && (running !== undefined || waiting !== undefined))
    gauges[GAUGES.concurrent] = (running ?? 0) + (waiting ?? 0);

  for (const [name, names] of Object.entries(COUNTER_SOURCES)) {
    for (const exposed of names) {
      const value = sumOf(page, exposed);
      if (value === undefined) continue;
      counters[name] = value;
      recognized++;
      break;
    }
  }
  for (const [name, names] of Object.entries(HISTOGRAM_SOURCES)) {
    for (const exposed of names) {
      const result = histogramOf(page, exposed);
      if (result === undefined) continue;
      if ("error" in result) {
        problems.push(result.error);
        break;
      }
      histograms[name] = result;
      recognized++;
      break;
    }
  }
  // Other gauges pass through under their exposition name (Kthena's cpu_utilization, memory_usage...).
  for (const family of page.families.values()) {
    if (family.type !== "gauge" || MAPPED.has(family.name) || gauges[family.name] !== undefined) continue;
    const value = sumOf(page, family.name);
    if (value !== undefined) gauges[family.name] = value;
  }
  return { metrics: { gauges, counters, histograms }, recognized, problems };
}
