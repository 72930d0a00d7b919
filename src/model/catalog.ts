import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { CATALOG_DIR } from "../paths.ts";
import { ConfigError, unknownNameMessage } from "../errors.ts";

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

const modelSchema = z.strictObject({
  num_layers: z.number().int().positive(),
  hidden_size: z.number().int().positive(),
  num_heads: z.number().int().positive(),
  num_kv_heads: z.number().int().positive(),
  weights_bytes: z.number().positive(),
  dtype_bytes: z.number().positive(),
});

export type ProcessorSpec = z.infer<typeof processorSchema> & { readonly name: string };
export type SkuSpec = z.infer<typeof skuSchema> & { readonly name: string };
export type ModelSpec = z.infer<typeof modelSchema> & { readonly name: string };

export interface Catalog {
  readonly processors: ReadonlyMap<string, ProcessorSpec>;
  readonly skus: ReadonlyMap<string, SkuSpec>;
  readonly models: ReadonlyMap<string, ModelSpec>;
}

function loadTable<T extends z.ZodType>(file: string, schema: T): Map<string, z.infer<T> & { name: string }> {
  const path = join(CATALOG_DIR, file);
  const raw: unknown = parse(readFileSync(path, "utf8"));
  const table = z.record(z.string(), schema).safeParse(raw);
  if (!table.success) throw new ConfigError(`${path}: ${z.prettifyError(table.error)}`);
  const entries = new Map<string, z.infer<T> & { name: string }>();
  for (const [name, value] of Object.entries(table.data)) {
    entries.set(name, { ...(value as object), name } as z.infer<T> & { name: string });
  }
  return entries;
}

let cached: Catalog | undefined;

/** The built-in hardware and model catalog (catalog/*.yaml), loaded once. */
export function loadCatalog(): Catalog {
  if (cached !== undefined) return cached;
  const processors = loadTable("processors.yaml", processorSchema);
  const skus = loadTable("skus.yaml", skuSchema);
  const models = loadTable("models.yaml", modelSchema);
  for (const sku of skus.values()) {
    if (!processors.has(sku.processor)) {
      throw new ConfigError(
        `catalog/skus.yaml: ${sku.name}.processor: ${unknownNameMessage("processor", sku.processor, [...processors.keys()])}`,
      );
    }
  }
  cached = { processors, skus, models };
  return cached;
}

export function lookup<T>(table: ReadonlyMap<string, T>, kind: string, name: string, where: string): T {
  const value = table.get(name);
  if (value === undefined)
    throw new ConfigError(`${where}: ${unknownNameMessage(kind, name, [...table.keys()])}`);
  return value;
}

/**
 * KV-cache bytes per token: 2 (K and V) x layers x KV width x dtype. With `ignoreGqa` the KV width is
 * the full hidden size, as upstream splitwise-sim computes it.
 */
export function kvBytesPerToken(model: ModelSpec, ignoreGqa: boolean): number {
  const kvWidth = ignoreGqa ? model.hidden_size : (model.hidden_size / model.num_heads) * model.num_kv_heads;
  return 2 * kvWidth * model.num_layers * model.dtype_bytes;
}
