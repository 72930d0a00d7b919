/**
 * Resolves (model, GPU, tensor parallelism) to what an instance needs: the catalog entries, memory and
 * KV-cache sizes, and the iteration-time model from the same performance models the simulator uses.
 * The serve config uses it too, for the capacity facts planning policies (`sla`) read.
 */
import { ConfigError, unknownNameMessage } from "../../errors.ts";
import {
  kvBytesPerToken,
  loadCatalog,
  lookup,
  resolveGpu,
  gpuNames,
  type Catalog,
} from "../../model/catalog.ts";
import { createPerformanceModel, type PerformanceModelSpec } from "../../model/factory.ts";
import type { IterationTimeModel } from "../../model/performance.ts";

export interface Hardware {
  readonly model: string;
  /** The processors.yaml name (what the performance models key on), e.g. h100-80gb. */
  readonly processor: string;
  readonly tensorParallelism: number;
  readonly maxMemoryBytes: number;
  readonly weightsBytes: number;
  readonly kvBytesPerToken: number;
  /** KV-cache tokens left after the weights. */
  readonly maxKvTokens: number;
  readonly perf: IterationTimeModel;
  /** Which performance model was used (db falls back to roofline where the table has no entry). */
  readonly perfModel: string;
  /** Cost of one replica per hour: the SKU's per-GPU price times tensor parallelism, when known. */
  readonly costPerHour_usd: number;
}

export type PerfModelChoice = "auto" | "db" | "roofline";

export function resolveHardware(
  options: {
    model: string;
    gpu: string;
    tp: number;
    perfModel?: PerfModelChoice | PerformanceModelSpec;
    baseDir?: string;
  },
  where = "engine",
  catalog: Catalog = loadCatalog(),
): Hardware {
  const model = lookup(catalog.models, "model", options.model, `${where} model`);
  let processorName = options.gpu;
  if (!catalog.processors.has(processorName)) {
    const gpu = resolveGpu(catalog, options.gpu);
    if (gpu?.processor === undefined)
      throw new ConfigError(
        `${where} gpu: ${unknownNameMessage("GPU", options.gpu, [...catalog.processors.keys(), ...gpuNames(catalog)])}`,
      );
    processorName = gpu.processor;
  }
  const processor = catalog.processors.get(processorName)!;
  if (!Number.isInteger(options.tp) || options.tp < 1)
    throw new ConfigError(`${where} tensor parallelism: expected a positive integer, got ${options.tp}`);
  const maxMemoryBytes = processor.memory_bytes * options.tp;
  if (model.weights_bytes >= maxMemoryBytes)
    throw new ConfigError(
      `${where}: model ${model.name} needs ${(model.weights_bytes / 2 ** 30).toFixed(1)} GiB of weights but ${options.tp} x ` +
        `${processorName} have ${(maxMemoryBytes / 2 ** 30).toFixed(1)} GiB; raise the tensor parallelism`,
    );
  const kvBytes = kvBytesPerToken(model, false);
  const baseDir = options.baseDir ?? process.cwd();
  const choice = options.perfModel ?? "auto";
  let perf: IterationTimeModel;
  let perfModel: string;
  if (typeof choice === "object") {
    perf = createPerformanceModel(choice, baseDir, catalog).forInstance(
      model.name,
      processorName,
      options.tp,
    );
    perfModel = choice.type;
  } else if (choice === "roofline") {
    perf = createPerformanceModel({ type: "roofline" }, baseDir, catalog).forInstance(
      model.name,
      processorName,
      options.tp,
    );
    perfModel = "roofline";
  } else {
    try {
      perf = createPerformanceModel({ type: "db" }, baseDir, catalog).forInstance(
        model.name,
        processorName,
        options.tp,
      );
      perfModel = "db";
    } catch (error) {
      if (choice === "db") throw error;
      perf = createPerformanceModel({ type: "roofline" }, baseDir, catalog).forInstance(
        model.name,
        processorName,
        options.tp,
      );
      perfModel = "roofline";
    }
  }
  const sku = [...catalog.skus.values()].find((candidate) => candidate.processor === processorName);
  return {
    model: model.name,
    processor: processorName,
    tensorParallelism: options.tp,
    maxMemoryBytes,
    weightsBytes: model.weights_bytes,
    kvBytesPerToken: kvBytes,
    maxKvTokens: Math.max(0, Math.floor((maxMemoryBytes - model.weights_bytes) / kvBytes)),
    perf,
    perfModel,
    costPerHour_usd: sku === undefined ? 0 : (sku.cost_per_hour_usd / sku.gpus) * options.tp,
  };
}
