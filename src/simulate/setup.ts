import { resolve } from "node:path";
import { ConfigError } from "../errors.ts";
import { loadCatalog, lookup } from "../model/catalog.ts";
import { createPerformanceModel } from "../model/factory.ts";
import type { PerformanceModel } from "../model/performance.ts";
import type { InstanceTemplate, PoolTemplate, StartState } from "../serving/cluster.ts";
import { createScheduler, SPLIT_SCHEDULERS } from "../serving/schedulers/registry.ts";
import type { SimulationConfig } from "../config/config.ts";
import type { InstanceConfig, PoolConfig } from "../config/schema.ts";
import type { SimulationSetup } from "./simulation.ts";

const performanceModels = new Map<string, PerformanceModel>();

/** Performance models are immutable after loading, so runs in one process share them. */
export function performanceModelFor(config: SimulationConfig, baseDir: string): PerformanceModel {
  const spec = config.performance_model;
  const key = JSON.stringify({
    ...spec,
    table: spec.table === undefined ? undefined : resolve(baseDir, spec.table),
    profile: spec.profile === undefined ? undefined : resolve(baseDir, spec.profile),
  });
  let model = performanceModels.get(key);
  if (model === undefined) {
    model = createPerformanceModel(spec, baseDir);
    performanceModels.set(key, model);
  }
  return model;
}

function instanceTemplate(config: InstanceConfig): InstanceTemplate {
  return {
    kind: config.batching,
    maxBatchSize: config.max_batch_size,
    maxBatchTokens: config.batching === "orca" ? Infinity : config.max_batch_tokens,
    maxPreemptions: config.max_preemptions,
    tensorParallelism: config.tensor_parallelism,
    pipelineParallelism: config.pipeline_parallelism,
  };
}

function poolTemplate(config: PoolConfig): PoolTemplate {
  return { ...instanceTemplate(config), numInstances: config.num_instances, skus: config.skus };
}

export function startStateOf(config: SimulationConfig): StartState {
  const state = config.start_state;
  switch (state.type) {
    case "unallocated":
      return { type: "unallocated" };
    case "baseline":
    case "orca":
      return { type: state.type, instance: instanceTemplate(state.instance) };
    case "splitwise":
      return {
        type: "splitwise",
        split: state.split,
        prompt: poolTemplate(state.prompt),
        token: poolTemplate(state.token),
      };
  }
}

/**
 * Things about a config that runs but may not do what its author meant, for the command line to
 * print as notes (a run is never refused for these).
 */
export function configNotes(config: SimulationConfig): string[] {
  const notes: string[] = [];
  if (config.start_state.type === "splitwise" && !SPLIT_SCHEDULERS.has(config.scheduler.name)) {
    notes.push(
      `scheduler ${config.scheduler.name} is not KV-aware: it runs each request's prefill and decode on one instance, ` +
        `so the prompt/token roles of start_state splitwise have no effect (mixed_pool and the kv_* schedulers split them)`,
    );
  }
  return notes;
}

/** Turns a validated config into the objects a Simulation needs; refuses configs that cannot run. */
export function buildSetup(config: SimulationConfig, baseDir: string, random: () => number): SimulationSetup {
  const catalog = loadCatalog();
  const model = lookup(catalog.models, "model", config.model, "model");
  config.cluster.servers.forEach((group, index) =>
    lookup(catalog.skus, "sku", group.sku, `cluster.servers[${index}].sku`),
  );
  if (SPLIT_SCHEDULERS.has(config.scheduler.name) && config.start_state.type !== "splitwise") {
    throw new ConfigError(
      `scheduler.name: ${config.scheduler.name} ships KV caches between prompt and token pools and needs start_state.type: splitwise (got ${config.start_state.type})`,
    );
  }
  const scheduler = createScheduler(
    config.scheduler.name,
    {
      transferBandwidthGBps: config.scheduler.transfer_bandwidth_gbps,
      promptMaxPendingBatchTokens: config.scheduler.prompt_max_pending_batch_tokens,
      onSaturation: config.scheduler.on_saturation,
      kvTokenJsqUpstream: config.compat.kv_token_jsq_upstream,
      ignoreInstanceStatus: config.compat.ignore_instance_status,
      maxRequestsPerInstance: config.scheduler.max_requests_per_instance,
      random,
    },
    "scheduler.name",
  );
  return {
    catalog,
    model,
    perf: performanceModelFor(config, baseDir),
    servers: config.cluster.servers,
    startState: startStateOf(config),
    scheduler,
    cluster: {
      kvCacheIgnoresGqa: config.compat.kv_cache_ignores_gqa,
      reserveDecodeUpFront: !config.compat.kv_reserve_at_decode_start,
      uniformUsesAllGpus: config.compat.uniform_uses_all_gpus,
    },
    kvRetryDelay_s: config.kv_retry_delay_s,
    kvLinkContention: !config.compat.kv_private_links,
    kvMemoryPolling: config.compat.kv_memory_polling,
    endTime_s: config.end_time_s ?? Infinity,
  };
}
