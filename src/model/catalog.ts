import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { CATALOG_DIR } from "../paths.ts";
import { ConfigError, UsageError, closestName, unknownNameMessage } from "../errors.ts";

const powerSchema = z.strictObject({
  idle: z.number().nonnegative(),
  prompt: z.number().nonnegative(),
  token: z.number().nonnegative(),
});

const processorSchema = z.strictObject({
  memory_bytes: z.number().positive(),
  power_w: powerSchema,
});

const skuSchema = z.strictObject({
  processor: z.string(),
  gpus: z.number().int().positive(),
  tdp_w: z.number().nonnegative(),
  cost_per_hour_usd: z.number().nonnegative(),
  interconnect: z.strictObject({ name: z.string(), bandwidth_gbps: z.number().positive() }),
});

// The architecture fields after dtype_bytes are optional: the db performance model needs none of them,
// and the roofline model says which one is missing when it needs it.
const modelSchema = z
  .strictObject({
    num_layers: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    num_heads: z.number().int().positive(),
    num_kv_heads: z.number().int().positive(),
    weights_bytes: z.number().positive(),
    dtype_bytes: z.number().positive(),
    /** MLP intermediate size (per expert for MoE models). */
    ffn_size: z.number().int().positive().optional(),
    vocab_size: z.number().int().positive().optional(),
    /** gated: SwiGLU/GeGLU (gate, up and down matrices); standard: up and down (GELU/ReLU). */
    mlp: z.enum(["gated", "standard"]).optional(),
    /** Per-head width where it is not hidden_size / num_heads. */
    head_dim: z.number().int().positive().optional(),
    num_experts: z.number().int().positive().optional(),
    experts_per_token: z.number().int().positive().optional(),
    /** Where the numbers come from (a Hugging Face model id). */
    hf_id: z.string().optional(),
  })
  .check((ctx) => {
    const model = ctx.value;
    if (model.num_heads % model.num_kv_heads !== 0) {
      ctx.issues.push({
        code: "custom",
        input: model.num_kv_heads,
        path: ["num_kv_heads"],
        message: `num_kv_heads (${model.num_kv_heads}) must divide num_heads (${model.num_heads})`,
      });
    }
    if ((model.num_experts === undefined) !== (model.experts_per_token === undefined)) {
      ctx.issues.push({
        code: "custom",
        input: model.num_experts ?? model.experts_per_token,
        path: [model.num_experts === undefined ? "num_experts" : "experts_per_token"],
        message: "MoE models need both num_experts and experts_per_token",
      });
    } else if (model.num_experts !== undefined && model.experts_per_token! > model.num_experts) {
      ctx.issues.push({
        code: "custom",
        input: model.experts_per_token,
        path: ["experts_per_token"],
        message: `experts_per_token (${model.experts_per_token}) exceeds num_experts (${model.num_experts})`,
      });
    }
  });

const gpuSchema = z.strictObject({
  vendor: z.string().optional(),
  /** Dense BF16/FP16 tensor-core peak. */
  peak_bf16_flops_per_s: z.number().positive(),
  memory_bandwidth_bytes_per_s: z.number().positive(),
  memory_bytes: z.number().positive(),
  /** Intra-node GPU-to-GPU link; bandwidth per GPU and per direction. */
  interconnect: z.strictObject({ name: z.string(), bandwidth_bytes_per_s: z.number().positive() }),
  /** The processors.yaml name of this GPU, so the simulator's hardware names resolve to it. */
  processor: z.string().optional(),
  aliases: z.array(z.string()).optional(),
});

export type ProcessorSpec = z.infer<typeof processorSchema> & { readonly name: string };
export type SkuSpec = z.infer<typeof skuSchema> & { readonly name: string };
export type ModelSpec = z.infer<typeof modelSchema> & { readonly name: string };
export type GpuSpec = z.infer<typeof gpuSchema> & { readonly name: string };

export interface Catalog {
  readonly processors: ReadonlyMap<string, ProcessorSpec>;
  readonly skus: ReadonlyMap<string, SkuSpec>;
  readonly models: ReadonlyMap<string, ModelSpec>;
  /** GPUs by their own name; resolve simulator processor names and aliases with `resolveGpu`. */
  readonly gpus: ReadonlyMap<string, GpuSpec>;
}

function loadTable<T extends z.ZodType>(
  dir: string,
  file: string,
  schema: T,
): Map<string, z.infer<T> & { name: string }> {
  const path = join(dir, file);
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const table = z.record(z.string(), schema).safeParse(raw);
  if (!table.success) {
    // One line per problem, naming the entry and key ("llama3-8b.ffn_size: ...").
    const problems = table.error.issues.map((issue) => {
      const key = issue.path.map(String).join(".");
      let message = issue.message;
      if (issue.code === "unrecognized_keys") {
        const known = Object.keys((schema as unknown as z.ZodObject).shape ?? {});
        const hints = issue.keys
          .map((k) => [k, closestName(k, known)] as const)
          .filter(([, hint]) => hint !== undefined)
          .map(([k, hint]) => `"${k}": did you mean "${hint}"?`);
        if (hints.length > 0) message += ` (${hints.join("; ")})`;
      }
      return `${path}: ${key === "" ? "(top level)" : key}: ${message}`;
    });
    throw new ConfigError(problems.join("\n"));
  }
  const entries = new Map<string, z.infer<T> & { name: string }>();
  for (const [name, value] of Object.entries(table.data)) {
    entries.set(name, { ...(value as object), name } as z.infer<T> & { name: string });
  }
  return entries;
}

/** Loads and cross-checks the catalog in `dir` (processors, skus, models, gpus .yaml); not cached. */
export function loadCatalogFrom(dir: string): Catalog {
  const processors = loadTable(dir, "processors.yaml", processorSchema);
  const skus = loadTable(dir, "skus.yaml", skuSchema);
  const models = loadTable(dir, "models.yaml", modelSchema);
  const gpus = loadTable(dir, "gpus.yaml", gpuSchema);
  for (const sku of skus.values()) {
    if (!processors.has(sku.processor)) {
      throw new ConfigError(
        `${join(dir, "skus.yaml")}: ${sku.name}.processor: ${unknownNameMessage("processor", sku.processor, [...processors.keys()])}`,
      );
    }
  }
  // Every name a GPU answers to must be unambiguous.
  const owners = new Map<string, string>();
  for (const gpu of gpus.values()) owners.set(gpu.name, gpu.name);
  for (const gpu of gpus.values()) {
    if (gpu.processor !== undefined && !processors.has(gpu.processor)) {
      throw new ConfigError(
        `${join(dir, "gpus.yaml")}: ${gpu.name}.processor: ${unknownNameMessage("processor", gpu.processor, [...processors.keys()])}`,
      );
    }
    for (const alias of [...(gpu.processor === undefined ? [] : [gpu.processor]), ...(gpu.aliases ?? [])]) {
      const owner = owners.get(alias);
      if (owner !== undefined && owner !== gpu.name) {
        throw new ConfigError(
          `${join(dir, "gpus.yaml")}: ${gpu.name}: the name "${alias}" already names GPU ${owner}`,
        );
      }
      owners.set(alias, gpu.name);
    }
  }
  return { processors, skus, models, gpus };
}

let cached: Catalog | undefined;

/** The built-in hardware and model catalog (catalog/*.yaml), loaded once. */
export function loadCatalog(): Catalog {
  cached ??= loadCatalogFrom(CATALOG_DIR);
  return cached;
}

/** A catalog entry by name; an unknown name is bad input (exit 2) with a suggestion. */
export function lookup<T>(table: ReadonlyMap<string, T>, kind: string, name: string, where: string): T {
  const value = table.get(name);
  if (value === undefined)
    throw new UsageError(`${where}: ${unknownNameMessage(kind, name, [...table.keys()])}`);
  return value;
}

/** The GPU a name refers to: its catalog name, the processors.yaml name it maps to, or an alias. */
export function resolveGpu(catalog: Catalog, name: string): GpuSpec | undefined {
  const direct = catalog.gpus.get(name);
  if (direct !== undefined) return direct;
  for (const gpu of catalog.gpus.values()) {
    if (gpu.processor === name || gpu.aliases?.includes(name) === true) return gpu;
  }
  return undefined;
}

/** Every name `resolveGpu` accepts (for did-you-mean messages). */
export function gpuNames(catalog: Catalog): string[] {
  const names: string[] = [];
  for (const gpu of catalog.gpus.values()) {
    names.push(gpu.name);
    if (gpu.processor !== undefined) names.push(gpu.processor);
    names.push(...(gpu.aliases ?? []));
  }
  return names;
}

/**
 * KV-cache bytes per token: 2 (K and V) x layers x KV width x dtype. With `ignoreGqa` the KV width is
 * the full hidden size, as upstream splitwise-sim computes it.
 */
export function kvBytesPerToken(model: ModelSpec, ignoreGqa: boolean): number {
  const headDim = model.head_dim ?? model.hidden_size / model.num_heads;
  const kvWidth = ignoreGqa ? model.hidden_size : headDim * model.num_kv_heads;
  return 2 * kvWidth * model.num_layers * model.dtype_bytes;
}
