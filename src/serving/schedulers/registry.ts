import { ConfigError, unknownNameMessage } from "../../errors.ts";
import { JsqScheduler, RandomScheduler, RoundRobinScheduler, TokenJsqScheduler } from "./colocated.ts";
import { AllMixedPoolScheduler, UnifiedPoolScheduler } from "./drl.ts";
import { KvJsqScheduler, KvRoundRobinScheduler, KvTokenJsqScheduler } from "./kv.ts";
import { AdaptiveMixedPoolScheduler, MixedPoolScheduler } from "./mixed-pool.ts";
import type { RequestScheduler, SchedulerOptions } from "./scheduler.ts";

type Factory = (options: SchedulerOptions) => RequestScheduler;

const withBandwidth = (options: SchedulerOptions, factor: number): SchedulerOptions => ({
  ...options,
  transferBandwidthGBps: options.transferBandwidthGBps * factor,
});

/**
 * Every upstream scheduler by its config name. The overlap variants model 90% overlap of the KV
 * shipment with prefill as 10x bandwidth, as upstream does; upstream's `kv_token_jsq.yaml` actually
 * builds the overlap variant, reproduced only with `kvTokenJsqUpstream`.
 */
const SCHEDULERS: Record<string, Factory> = {
  random: (o) => new RandomScheduler(o),
  round_robin: (o) => new RoundRobinScheduler(o),
  jsq: (o) => new JsqScheduler(o),
  token_jsq: (o) => new TokenJsqScheduler(o),
  kv_round_robin: (o) => new KvRoundRobinScheduler(o),
  kv_round_robin_ethernet: (o) =>
    new KvRoundRobinScheduler({ ...o, transferBandwidthGBps: 12.5 }, "kv_round_robin_ethernet"),
  kv_jsq: (o) => new KvJsqScheduler(o),
  overlap_kv_jsq: (o) => new KvJsqScheduler(withBandwidth(o, 10), "overlap_kv_jsq"),
  kv_token_jsq: (o) => new KvTokenJsqScheduler(o.kvTokenJsqUpstream ? withBandwidth(o, 10) : o),
  overlap_kv_token_jsq: (o) => new KvTokenJsqScheduler(withBandwidth(o, 10), "overlap_kv_token_jsq"),
  mixed_pool: (o) => new MixedPoolScheduler(o),
  adaptive_mixed_pool: (o) => new AdaptiveMixedPoolScheduler(o),
  all_mixed_pool: (o) => new AllMixedPoolScheduler(o),
  unified_pool: (o) => new UnifiedPoolScheduler(o),
};

export const SCHEDULER_NAMES = Object.keys(SCHEDULERS);

/** Schedulers that need separate prompt and token pools (a splitwise start state). */
export const SPLIT_SCHEDULERS = new Set([
  "kv_round_robin",
  "kv_round_robin_ethernet",
  "kv_jsq",
  "overlap_kv_jsq",
  "kv_token_jsq",
  "overlap_kv_token_jsq",
  "mixed_pool",
  "adaptive_mixed_pool",
  "all_mixed_pool",
  "unified_pool",
]);

export function createScheduler(name: string, options: SchedulerOptions, where: string): RequestScheduler {
  const factory = SCHEDULERS[name];
  if (factory === undefined)
    throw new ConfigError(`${where}: ${unknownNameMessage("scheduler", name, SCHEDULER_NAMES)}`);
  return factory(options);
}
