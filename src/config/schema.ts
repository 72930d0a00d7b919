import { z } from "zod";
import { unknownNameMessage } from "../errors.ts";
import { performanceModelSpecSchema } from "../model/factory.ts";
import { SCHEDULER_NAMES } from "../serving/schedulers/registry.ts";

/**
 * The simulation config (YAML). Every key has a default so an empty file runs; units are in the
 * key names (_s seconds, _gbps GB/s with GB = 1024^3 bytes, _tokens tokens).
 */

const batchingFields = {
  batching: z.enum(["splitwise", "orca"]).default("splitwise"),
  max_batch_size: z.int().positive().default(512),
  max_batch_tokens: z.int().positive().default(2048),
  max_preemptions: z.int().nonnegative().default(4),
  tensor_parallelism: z.int().positive().default(8),
  pipeline_parallelism: z.int().positive().default(1),
};

export const instanceSchema = z.strictObject(batchingFields);

/**
 * The `orca` start state's instances: ORCA batching whatever other settings are given (a `prefault`
 * alone would apply only when `instance:` is absent, so `instance: { max_batch_size: 64 }` silently
 * ran Splitwise batching).
 */
const orcaInstanceSchema = z.strictObject({
  ...batchingFields,
  batching: z
    .literal("orca", {
      error: 'the orca start state runs ORCA batching (use type: baseline for "splitwise")',
    })
    .default("orca"),
});

export const poolSchema = z.strictObject({
  ...batchingFields,
  num_instances: z.int().nonnegative().default(1),
  skus: z.array(z.string()).default([]),
});

export const startStateSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("unallocated") }),
  z.strictObject({ type: z.literal("baseline"), instance: instanceSchema.prefault({}) }),
  z.strictObject({ type: z.literal("orca"), instance: orcaInstanceSchema.prefault({}) }),
  z.strictObject({
    type: z.literal("splitwise"),
    split: z.enum(["homogeneous", "heterogeneous"]).default("homogeneous"),
    prompt: poolSchema.prefault({ skus: ["dgx-h100"] }),
    token: poolSchema.prefault({ skus: ["dgx-a100"] }),
  }),
]);

export const schedulerSchema = z.strictObject({
  name: z
    .string()
    .default("mixed_pool")
    .refine((name) => SCHEDULER_NAMES.includes(name), {
      error: (issue) => unknownNameMessage("scheduler", String(issue.input), SCHEDULER_NAMES),
    }),
  transfer_bandwidth_gbps: z.number().positive().default(200),
  prompt_max_pending_batch_tokens: z.int().positive().default(8192),
  on_saturation: z.enum(["borrow", "queue", "hold"]).default("borrow"),
  /**
   * Requests an instance may hold at once (running or queued on it); more wait at the scheduler, as
   * in a gateway with a queue (EverAI, Knative containerConcurrency). 0 = unlimited (upstream).
   */
  max_requests_per_instance: z.int().nonnegative().default(0),
});

/** `performance_model:` (see docs/performance-models.md): db (upstream's table), roofline or profile. */
export const performanceModelSchema = performanceModelSpecSchema;

const percentileTargets = (p50: number, p90: number, p99: number) =>
  z
    .strictObject({
      p50: z.number().positive().default(p50),
      p90: z.number().positive().default(p90),
      p99: z.number().positive().default(p99),
    })
    .prefault({});

export const sloSchema = z.strictObject({
  ttft_slowdown: percentileTargets(2, 3, 6),
  tbt_slowdown: percentileTargets(1.25, 1.5, 5),
  e2e_slowdown: percentileTargets(1.25, 1.5, 5),
  ttft_s: z.number().positive().optional(),
  tbt_s: z.number().positive().optional(),
});

export const compatSchema = z.strictObject({
  /** KV bytes from the full hidden size even for grouped-query attention models (upstream). */
  kv_cache_ignores_gqa: z.boolean().default(false),
  /** baseline/orca instances take all GPUs of a server whatever their tensor parallelism (upstream). */
  uniform_uses_all_gpus: z.boolean().default(false),
  /** kv_token_jsq never updates its counters and ships 10x faster, as upstream's config does. */
  kv_token_jsq_upstream: z.boolean().default(false),
  /** Schedulers may place work on starting or draining instances (upstream mixed_pool and KV schedulers). */
  ignore_instance_status: z.boolean().default(false),
  /** TBT = (E2E - TTFT) / output_tokens (upstream) instead of / (output_tokens - 1). */
  tbt_divides_by_all_tokens: z.boolean().default(false),
  /** Every KV shipment gets a private link at full bandwidth (upstream's DummyLink) instead of sharing server NICs. */
  kv_private_links: z.boolean().default(false),
  /** A KV shipment waiting for memory at its destination polls every kv_retry_delay_s (upstream) instead of starting as soon as memory is freed. */
  kv_memory_polling: z.boolean().default(false),
  /**
   * A decode reserves its KV cache only when it starts (upstream), instead of with its prefill or KV
   * shipment; under memory pressure an instance can then fill with prefilled requests whose decodes
   * never fit (a deadlock).
   */
  kv_reserve_at_decode_start: z.boolean().default(false),
});

export const metricsSchema = z.strictObject({
  /** Requests arriving before this time are run but left out of latency statistics. */
  warmup_s: z.number().nonnegative().default(0),
  /** Length of one row of timeline.csv (the run over time), in simulated seconds (at least 0.1). */
  timeline_interval_s: z.number().min(0.1).default(60),
  /** Reference hardware for slowdowns: the instance SKU of the run's first pool by default. */
  slo_reference: z
    .strictObject({ model: z.string(), hardware: z.string(), tensor_parallelism: z.int().positive() })
    .optional(),
});

export const clusterSchema = z.strictObject({
  servers: z
    .array(z.strictObject({ sku: z.string(), count: z.int().nonnegative() }))
    .default([{ sku: "dgx-h100", count: 4 }]),
});

export type InstanceConfig = z.infer<typeof instanceSchema>;
export type PoolConfig = z.infer<typeof poolSchema>;
export type StartStateConfig = z.infer<typeof startStateSchema>;
