import { readFileSync } from "node:fs";
import { z } from "zod";
import { UsageError } from "../errors.ts";
import { parseYamlSource } from "./config.ts";

/**
 * Reads a resolved upstream splitwise-sim `config.yaml` (what Hydra writes into a run directory) and
 * translates it into a splitscale config with every upstream-compatibility flag on, so existing
 * experiments run unchanged and reproduce upstream numbers.
 */
const upstreamInstanceSchema = z.looseObject({
  instance_type: z.enum(["DEFAULT", "ORCA", "Splitwise"]),
  max_batch_size: z.int().positive().default(512),
  max_batch_tokens: z.int().positive().optional(),
  max_preemptions: z.int().nonnegative().optional(),
  pipeline_parallelism: z.int().positive().default(1),
  tensor_parallelism: z.int().positive().default(8),
  num_instances: z.int().nonnegative().optional(),
  instance_names: z.array(z.string()).optional(),
});

const upstreamSchema = z.looseObject({
  cluster: z.looseObject({
    servers: z.array(z.looseObject({ sku: z.string(), count: z.int().nonnegative() })),
  }),
  applications: z
    .array(z.looseObject({ model_architecture: z.string(), scheduler: z.string() }))
    .min(1, "expected at least one application"),
  start_state: z.looseObject({
    state_type: z.string(),
    split_type: z.enum(["homogeneous", "heterogeneous"]).optional(),
    instance_type: z.string().optional(),
    prompt: upstreamInstanceSchema.optional(),
    token: upstreamInstanceSchema.optional(),
  }),
  performance_model: z.looseObject({ _target_: z.string().optional() }).optional(),
  seed: z.int().nonnegative().default(0),
  end_time: z.number().positive().optional(),
});

type UpstreamInstance = z.infer<typeof upstreamInstanceSchema>;

function instanceOf(upstream: UpstreamInstance | undefined, where: string): Record<string, unknown> {
  if (upstream === undefined) throw new UsageError(`${where}: missing in the splitwise config`);
  if (upstream.instance_type === "DEFAULT") {
    throw new UsageError(
      `${where}.instance_type: DEFAULT instances only work with upstream's constant performance model; use ORCA or Splitwise`,
    );
  }
  const batching = upstream.instance_type === "ORCA" ? "orca" : "splitwise";
  return {
    batching,
    max_batch_size: upstream.max_batch_size,
    max_batch_tokens: upstream.max_batch_tokens ?? 2048,
    max_preemptions: upstream.max_preemptions ?? 4,
    tensor_parallelism: upstream.tensor_parallelism,
    pipeline_parallelism: upstream.pipeline_parallelism,
  };
}

/** Upstream's uniform start states hard-code their instance configuration (start_state/*.yaml). */
const UNIFORM_DEFAULTS: Record<string, Record<string, unknown>> = {
  orca: { batching: "orca", max_batch_size: 512, tensor_parallelism: 8 },
  baseline: {
    batching: "splitwise",
    max_batch_size: 512,
    max_batch_tokens: 2048,
    max_preemptions: 4,
    tensor_parallelism: 8,
  },
};

export function translateSplitwiseConfig(raw: unknown, source: string): Record<string, unknown> {
  const parsed = upstreamSchema.safeParse(raw);
  if (!parsed.success)
    throw new UsageError(`${source}: not a resolved splitwise-sim config:\n${z.prettifyError(parsed.error)}`);
  const upstream = parsed.data;
  if (
    upstream.performance_model?._target_ !== undefined &&
    !upstream.performance_model._target_.includes("Database")
  ) {
    throw new UsageError(
      `${source}: performance_model: only upstream's db model can drive ORCA/Splitwise instances (run upstream with performance_model=db)`,
    );
  }
  const application = upstream.applications[0]!;
  const stateType = upstream.start_state.state_type;
  let startState: Record<string, unknown>;
  if (stateType === "orca" || stateType === "baseline") {
    startState = { type: stateType, instance: UNIFORM_DEFAULTS[stateType] };
  } else if (stateType.startsWith("splitwise")) {
    const prompt = upstream.start_state.prompt;
    const token = upstream.start_state.token;
    startState = {
      type: "splitwise",
      split: upstream.start_state.split_type ?? "homogeneous",
      prompt: {
        ...instanceOf(prompt, "start_state.prompt"),
        num_instances: prompt?.num_instances ?? 1,
        skus: prompt?.instance_names ?? ["dgx-h100"],
      },
      token: {
        ...instanceOf(token, "start_state.token"),
        num_instances: token?.num_instances ?? 1,
        skus: token?.instance_names ?? ["dgx-a100"],
      },
    };
  } else if (stateType === "unallocated") {
    startState = { type: "unallocated" };
  } else {
    throw new UsageError(
      `${source}: start_state.state_type: unsupported "${stateType}" (expected orca, baseline, splitwise_*, unallocated)`,
    );
  }
  return {
    name: `splitwise-compat:${source}`,
    seed: upstream.seed,
    ...(upstream.end_time === undefined ? {} : { end_time_s: upstream.end_time }),
    model: application.model_architecture,
    cluster: { servers: upstream.cluster.servers.map(({ sku, count }) => ({ sku, count })) },
    start_state: startState,
    scheduler: { name: application.scheduler, on_saturation: "borrow" },
    performance_model: { type: "db" },
    compat: {
      kv_cache_ignores_gqa: true,
      uniform_uses_all_gpus: true,
      kv_token_jsq_upstream: true,
      ignore_instance_status: true,
      tbt_divides_by_all_tokens: true,
      kv_private_links: true,
      kv_memory_polling: true,
      kv_reserve_at_decode_start: true,
    },
  };
}

export function readSplitwiseConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read splitwise config ${path}: ${(error as Error).message}`);
  }
  return translateSplitwiseConfig(parseYamlSource(text, path).value, path);
}
