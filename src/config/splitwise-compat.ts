import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
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
    .array(
      z.looseObject({
        application_id: z.int().nonnegative().optional(),
        model_architecture: z.string(),
        scheduler: z.string(),
      }),
    )
    .min(1, "expected at least one application"),
  start_state: z.looseObject({
    state_type: z.string(),
    split_type: z.enum(["homogeneous", "heterogeneous"]).optional(),
    instance_type: z.string().optional(),
    instance: upstreamInstanceSchema.optional(),
    prompt: upstreamInstanceSchema.optional(),
    token: upstreamInstanceSchema.optional(),
  }),
  performance_model: z
    .looseObject({ _target_: z.string().optional(), db_path: z.string().optional() })
    .optional(),
  router: z
    .looseObject({ overheads: z.looseObject({ routing_delay: z.number().optional() }).optional() })
    .optional(),
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
    // Upstream never uses pipeline parallelism to place instances (nor does its db model read it).
    pipeline_parallelism: 1,
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

/** Keys only a splitscale config has: a file with them was given to the wrong flag. */
const SPLITSCALE_KEYS = ["model", "workload", "scheduler", "autoscaling", "compat"];

export function translateSplitwiseConfig(raw: unknown, source: string): Record<string, unknown> {
  const resolved = resolveInterpolations(raw, source);
  const parsed = upstreamSchema.safeParse(resolved);
  if (!parsed.success) {
    const looksOurs =
      resolved !== null &&
      typeof resolved === "object" &&
      SPLITSCALE_KEYS.some((key) => key in (resolved as Record<string, unknown>));
    const hint = looksOurs ? "\n(this looks like a splitscale config: run it with --config)" : "";
    throw new UsageError(`${source}: not a splitwise-sim config:\n${z.prettifyError(parsed.error)}${hint}`);
  }
  const upstream = parsed.data;
  refuseUnsupported(upstream, source);
  if (
    upstream.performance_model?._target_ !== undefined &&
    !upstream.performance_model._target_.includes("Database")
  ) {
    throw new UsageError(
      `${source}: performance_model: only upstream's db model can drive ORCA/Splitwise instances (run upstream with performance_model=db)`,
    );
  }
  const application = upstream.applications[0]!;
  const dbPath = upstream.performance_model?.db_path;
  const stateType = upstream.start_state.state_type;
  let startState: Record<string, unknown>;
  if (stateType === "orca" || stateType === "baseline") {
    // Upstream builds uniform instances from `start_state.instance` (its start_state/*.yaml fill it
    // with the defaults below). Both run as splitscale's `baseline` layout with the batching the
    // instance type names, so an `orca` state with Splitwise instances runs as upstream would.
    const configured = upstream.start_state.instance;
    const instance =
      configured === undefined
        ? UNIFORM_DEFAULTS[stateType]!
        : instanceOf(configured, "start_state.instance");
    startState = { type: "baseline", instance };
  } else if (stateType.startsWith("splitwise")) {
    const prompt = upstream.start_state.prompt;
    const token = upstream.start_state.token;
    // Upstream slices its server list (servers[:P], servers[P:P+T]), so a split asking for more
    // servers than the cluster has quietly gets what is there; splitscale itself refuses it.
    const servers = upstream.cluster.servers.reduce((sum, group) => sum + group.count, 0);
    const promptCount = Math.min(prompt?.num_instances ?? 1, servers);
    const tokenCount = Math.min(token?.num_instances ?? 1, servers - promptCount);
    startState = {
      type: "splitwise",
      split: upstream.start_state.split_type ?? "homogeneous",
      prompt: {
        ...instanceOf(prompt, "start_state.prompt"),
        num_instances: promptCount,
        skus: prompt?.instance_names ?? ["dgx-h100"],
      },
      token: {
        ...instanceOf(token, "start_state.token"),
        num_instances: tokenCount,
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
    cluster: { servers: groupedBySku(upstream.cluster.servers) },
    start_state: startState,
    scheduler: { name: application.scheduler, on_saturation: "borrow" },
    performance_model: { type: "db", ...perfTableOf(dbPath, source) },
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

/** A run directory stands for its config: `config.yaml` in it, else Hydra's `.hydra/config.yaml`. */
function configFileOf(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) return path;
  for (const candidate of [join(path, "config.yaml"), join(path, ".hydra", "config.yaml")])
    if (existsSync(candidate)) return candidate;
  throw new UsageError(
    `${path} is a directory without config.yaml or .hydra/config.yaml; give the run's config file`,
  );
}

export function readSplitwiseConfig(given: string): Record<string, unknown> {
  const path = configFileOf(given);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read splitwise config ${path}: ${(error as Error).message}`);
  }
  return translateSplitwiseConfig(parseYamlSource(text, path).value, path);
}

type Upstream = z.infer<typeof upstreamSchema>;

/** Upstream settings splitscale cannot reproduce: refused, rather than run with different results. */
function refuseUnsupported(upstream: Upstream, source: string): void {
  if (upstream.applications.length > 1) {
    const models = upstream.applications.map((application) => application.model_architecture).join(", ");
    throw new UsageError(
      `${source}: applications: ${upstream.applications.length} applications (${models}); splitscale runs one model per simulation, so keep the application the trace is for`,
    );
  }
  const delay = upstream.router?.overheads?.routing_delay ?? 0;
  if (delay !== 0) {
    throw new UsageError(
      `${source}: router.overheads.routing_delay: ${delay} s is not modelled (upstream adds it to every request's TTFT and E2E); set it to 0, and add it to the results if you need it`,
    );
  }
  const application = upstream.applications[0] as Record<string, unknown>;
  if ("scaling_manager" in application) {
    throw new UsageError(
      `${source}: applications[0].scaling_manager: a splitwise-DRL autoscaling config; --splitwise-config runs upstream splitwise-sim's fixed fleets. Write a splitscale config with an autoscaling section instead (docs/autoscaling.md)`,
    );
  }
}

/** Upstream's default table path: the same measured table splitscale bundles. */
const UPSTREAM_DEFAULT_DB = "data/perf_model.csv";

/**
 * The measured table upstream's db model reads: `db_path` is relative to the directory upstream's
 * run.py runs in, so it is looked up from the working directory (run from the splitwise-sim checkout
 * to use an edited table). Upstream's default path, when not found, is the bundled copy of that table.
 */
function perfTableOf(dbPath: string | undefined, source: string): { table?: string } {
  if (dbPath === undefined) return {};
  const path = resolve(process.cwd(), dbPath);
  if (existsSync(path)) return { table: path };
  if (dbPath === UPSTREAM_DEFAULT_DB) return {};
  throw new UsageError(
    `${source}: performance_model.db_path: ${dbPath} not found from the working directory (${process.cwd()}); upstream reads it relative to where run.py runs, so run from the splitwise-sim checkout or give an absolute path`,
  );
}

/** A whole-string reference `${a.b}`, and one inside a longer string. */
const WHOLE_REFERENCE = /^\$\{([A-Za-z_][\w.]*)\}$/;
const REFERENCE = /\$\{([^}]*)\}/g;

/**
 * Resolves OmegaConf references (`${a.b}`, absolute key paths) the way Hydra would, because the
 * `.hydra/config.yaml` Hydra saves keeps them unresolved (paper sweeps write `count: ${sweep}`).
 * Resolvers such as `${eval:...}` cannot be evaluated here and are refused with how to resolve them.
 */
export function resolveInterpolations(raw: unknown, source: string): unknown {
  const root = raw;
  const lookup = (path: string, where: string, depth: number): unknown => {
    let node: unknown = root;
    for (const part of path.split(".")) {
      if (node === null || typeof node !== "object" || !(part in node))
        throw new UsageError(`${source}: ${where}: \${${path}} refers to a key the file does not have`);
      node = (node as Record<string, unknown>)[part];
    }
    return resolveValue(node, path, depth + 1);
  };
  const resolveValue = (value: unknown, where: string, depth: number): unknown => {
    if (depth > 32) throw new UsageError(`${source}: ${where}: references loop`);
    if (typeof value === "string" && value.includes("${")) {
      const whole = WHOLE_REFERENCE.exec(value);
      if (whole !== null) return lookup(whole[1]!, where, depth);
      return value.replace(REFERENCE, (_match, inner: string) => {
        if (!/^[A-Za-z_][\w.]*$/.test(inner)) {
          throw new UsageError(
            `${source}: ${where}: "${value}" uses an OmegaConf resolver, which splitscale cannot evaluate; write the resolved config with upstream's \`python run.py <your overrides> --cfg job --resolve > config.yaml\``,
          );
        }
        return String(lookup(inner, where, depth));
      });
    }
    if (Array.isArray(value))
      return value.map((item, index) => resolveValue(item, `${where}[${index}]`, depth));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [
          key,
          resolveValue(item, where === "" ? key : `${where}.${key}`, depth),
        ]),
      );
    }
    return value;
  };
  return resolveValue(raw, "", 0);
}

/**
 * Upstream keeps its servers grouped by SKU (in the order each SKU first appears), so a SKU listed
 * twice in `cluster.servers` is one group: that order decides which servers host prompt instances.
 */
function groupedBySku(servers: readonly { sku: string; count: number }[]): { sku: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const { sku, count } of servers) counts.set(sku, (counts.get(sku) ?? 0) + count);
  return [...counts].map(([sku, count]) => ({ sku, count }));
}
