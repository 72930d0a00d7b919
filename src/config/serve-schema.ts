/**
 * The `splitscale serve --config FILE` config: gateway, queue, routing, pools, autoscaling policy and
 * actuator. Every key has a default (an empty file serves one emulated engine on 127.0.0.1:8080);
 * units are in key names. Errors name the file, the line and the key (see `loadServeConfig`).
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document } from "yaml";
import { z } from "zod";
import { UsageError, closestName } from "../errors.ts";
import { performanceModelSpecSchema } from "../model/factory.ts";

const seconds = z.number().nonnegative();
const positiveSeconds = z.number().positive();
const port = z.int().min(0).max(65535);

export const listenSchema = z.strictObject({
  host: z.string().min(1).default("127.0.0.1"),
  /** 0 = any free port (the bound address is printed and returned). */
  port: port.default(8080),
});

export const queueSchema = z.strictObject({
  /** Requests held at the gateway at most; one more is refused with 429 and Retry-After. */
  max_size: z.int().nonnegative().default(256),
  /** Longest a request may wait in the queue before it is refused with 503 and Retry-After. */
  timeout_s: positiveSeconds.default(60),
});

export const requestsSchema = z.strictObject({
  /** Per-request deadline from arrival to the last byte (504 / an SSE error event when exceeded). */
  timeout_s: positiveSeconds.default(600),
  /** Largest request body accepted (413 above). */
  max_body_bytes: z
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  /** Times a request is retried on another worker when its worker fails before any byte reached the client. */
  retries: z.int().min(0).max(3).default(1),
});

export const routingSchema = z.strictObject({
  /**
   * least_loaded: fewest requests in flight from this gateway (ties: least KV cache in use);
   * least_prefill_tokens: fewest prompt tokens still in prefill (prefill-aware); round_robin.
   */
  strategy: z.enum(["least_loaded", "least_prefill_tokens", "round_robin"]).default("least_loaded"),
  /** Requests one worker serves at once; more wait in the gateway queue (reason WorkerBusy). 0 = unlimited. */
  max_concurrency_per_worker: z.int().nonnegative().default(8),
});

export const servePoolSchema = z
  .strictObject({
    role: z.enum(["prefill", "decode", "mixed"]).default("mixed"),
    min: z.int().nonnegative().default(1),
    max: z.int().positive().default(4),
    /** Workers started with the gateway; default `min`. */
    initial: z.int().nonnegative().optional(),
    /** Expected seconds from scale-up to ready (what planning policies assume). */
    startup_delay_s: seconds.default(60),
    /** Cost of one worker per hour; default from the catalog's SKU price per GPU × tensor_parallelism. */
    cost_per_hour_usd: z.number().nonnegative().optional(),
  })
  .refine((pool) => pool.min <= pool.max, { message: "min must be <= max", path: ["min"] });

export const serveAutoscalingSchema = z.strictObject({
  /** false = a fixed fleet (the pools' `initial`), no control loop. */
  enabled: z.boolean().default(true),
  /** Policy name (see `splitscale policies`); the same registry as in simulation. */
  policy: z.string().default("static"),
  policy_config: z.record(z.string(), z.unknown()).default({}),
  /** A policy file (splitscale policy YAML or MatrixInfer/Kthena AutoscalingPolicy[Binding] YAML); overrides `policy`. */
  policy_file: z.string().optional(),
  /** Seconds between decisions (policy time); default: the policy's own tick. */
  decision_interval_s: positiveSeconds.optional(),
  /** Wall seconds between scrapes of the workers' metrics pages. */
  scrape_interval_s: positiveSeconds.default(2),
  /** Wall seconds a scrape may take. */
  scrape_timeout_s: positiveSeconds.default(2),
  /** A worker not scraped successfully for this many wall seconds has missing metrics (never zeros). */
  metrics_staleness_s: positiveSeconds.default(10),
  /**
   * Policy time runs this many times faster than wall time: windows, idle times and decision intervals
   * in the policy shrink accordingly (scrape settings do not). For tests and demos: seed YAML with
   * minutes-long windows, exercised in seconds.
   */
  time_scale: z.number().positive().default(1),
  /** Append every decision that changed a target, as JSON lines, to this file. */
  decision_log: z.string().optional(),
});

const processRestartSchema = z.strictObject({
  /** First delay before restarting a crashed worker; doubles per crash up to max_backoff_s. */
  backoff_s: seconds.default(1),
  max_backoff_s: seconds.default(30),
  /** A worker up this long has its backoff reset. */
  reset_after_s: positiveSeconds.default(60),
});

export const engineDefaultsSchema = z.strictObject({
  /** For the default worker command (the emulated engine): emulated seconds per wall second. */
  time_scale: z.number().positive().default(1),
  /** Emulated model start-up before /health turns 200. */
  load_delay_s: seconds.default(0),
  max_batch_size: z.int().positive().default(512),
  max_batch_tokens: z.int().positive().default(2048),
  /** Extra flags appended to the default command. */
  args: z.array(z.string()).default([]),
});

export const processActuatorSchema = z.strictObject({
  type: z.literal("process"),
  /**
   * Worker command with placeholders {port}, {host}, {id}, {pool}, {model}, {served_model}, {gpu}, {tp}:
   * a string (run by /bin/sh; a leading `splitscale` runs this installation) or an argv list.
   * Default: the emulated engine (`splitscale engine --port {port} ...`).
   */
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
  engine: engineDefaultsSchema.prefault({}),
  /** Address workers listen on and the gateway connects to. */
  host: z.string().min(1).default("127.0.0.1"),
  /** Port range for workers; 0..0 = ports the OS hands out. */
  ports: z
    .strictObject({ from: port.default(0), to: port.default(0) })
    .refine((range) => range.to >= range.from, { message: "to must be >= from", path: ["to"] })
    .prefault({}),
  health_path: z.string().startsWith("/").default("/health"),
  metrics_path: z.string().startsWith("/").default("/metrics"),
  readiness: z
    .strictObject({ interval_s: positiveSeconds.default(0.25), timeout_s: positiveSeconds.default(900) })
    .prefault({}),
  /** A draining worker is stopped once its requests finish or after this long. */
  drain_timeout_s: seconds.default(300),
  /** SIGTERM, then SIGKILL after this long. */
  stop_timeout_s: seconds.default(10),
  restart: processRestartSchema.prefault({}),
  env: z.record(z.string(), z.string()).default({}),
  /** Worker stdout/stderr go to <log_dir>/<worker id>.log; default: kept in memory (last lines in the admin API). */
  log_dir: z.string().optional(),
});

export const kubernetesActuatorSchema = z.strictObject({
  type: z.literal("kubernetes"),
  namespace: z.string().min(1).default("default"),
  /** A kubeconfig file; default: in-cluster service account, else ~/.kube/config. */
  kubeconfig: z.string().optional(),
  /** Talk to this API server URL instead (tests and port-forwards); `token` authenticates. */
  server: z.url().optional(),
  token: z.string().optional(),
  insecure_skip_tls_verify: z.boolean().default(false),
  /**
   * Read AutoscalingPolicyBinding / AutoscalingPolicy custom resources (MatrixInfer/Kthena) in the
   * namespace: each binding is a pool with its own policy. false = scale the `targets` below with
   * the config's policy.
   */
  bindings: z.boolean().default(true),
  /** API groups whose AutoscalingPolicy[Binding] resources are read, in order. */
  crd_groups: z.array(z.string().min(1)).default(["registry.matrixinfer.ai", "workload.serving.volcano.sh"]),
  crd_version: z.string().default("v1alpha1"),
  /** Scale targets when `bindings` is false (pool name → workload). */
  targets: z
    .record(
      z.string(),
      z.strictObject({
        kind: z.string().default("Deployment"),
        name: z.string().min(1),
        api_version: z.string().default("apps/v1"),
      }),
    )
    .default({}),
  /** How pods' metrics pages are reached (a pod annotation `splitscale.io/metrics-port` or `prometheus.io/port` wins). */
  metrics: z
    .strictObject({
      port: port.default(8000),
      path: z.string().startsWith("/").default("/metrics"),
      scheme: z.enum(["http", "https"]).default("http"),
    })
    .prefault({}),
  /** Seconds between re-reads of the bindings and pods. */
  resync_s: positiveSeconds.default(10),
  /** ConfigMap that keeps policy state across controller restarts. */
  state_configmap: z.string().min(1).default("splitscale-autoscaler-state"),
  /** Plural resource names of custom scale targets by kind (ModelInfer → modelinfers by default). */
  plurals: z.record(z.string(), z.string()).default({}),
});

export const serveConfigSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  listen: listenSchema.prefault({}),
  /** Catalog model the workers serve (the performance model and capacity facts come from it). */
  model: z.string().default("llama2-70b"),
  /** The model name clients send; default `model`. */
  served_model_name: z.string().optional(),
  gpu: z.string().default("h100"),
  tensor_parallelism: z.int().positive().default(8),
  performance_model: performanceModelSpecSchema.optional(),
  queue: queueSchema.prefault({}),
  requests: requestsSchema.prefault({}),
  routing: routingSchema.prefault({}),
  pools: z.record(z.string(), servePoolSchema).prefault({ mixed: {} }),
  autoscaling: serveAutoscalingSchema.prefault({}),
  actuator: z
    .discriminatedUnion("type", [processActuatorSchema, kubernetesActuatorSchema])
    .prefault({ type: "process" }),
  log_level: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export type ServeConfig = z.infer<typeof serveConfigSchema>;
export type ServePoolConfig = z.infer<typeof servePoolSchema>;
export type ProcessActuatorConfig = z.infer<typeof processActuatorSchema>;
export type KubernetesActuatorConfig = z.infer<typeof kubernetesActuatorSchema>;

export interface LoadedServeConfig {
  readonly config: ServeConfig;
  readonly source: string;
  /** Relative paths (policy_file, decision_log, log_dir) resolve against this directory. */
  readonly baseDir: string;
}

function shapeKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let current: z.ZodType | undefined = schema;
  for (const key of path) {
    current = unwrap(current);
    if (current instanceof z.ZodObject) current = (current.shape as Record<string, z.ZodType>)[String(key)];
    else if (current instanceof z.ZodRecord) current = current.valueType as unknown as z.ZodType;
    else if (current instanceof z.ZodDiscriminatedUnion) return undefined;
    else return undefined;
    if (current === undefined) return undefined;
  }
  current = unwrap(current);
  return current instanceof z.ZodObject ? Object.keys(current.shape) : undefined;
}

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let current = schema;
  for (let i = 0; i < 8 && current !== undefined; i++) {
    const def = (current as unknown as { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } }).def;
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === "pipe" && def.in !== undefined) current = def.in;
    else break;
  }
  return current;
}

/** `:line` of the deepest node on `path` the document has (or of the key named `key` in it). */
function locator(document: Document, lineCounter: LineCounter) {
  return (path: readonly PropertyKey[], key?: string): string => {
    if (key !== undefined) {
      const parent = path.length === 0 ? document.contents : document.getIn(path as unknown[], true);
      if (isMap(parent)) {
        const pair = parent.items.find(
          (item) => isPair(item) && isScalar(item.key) && item.key.value === key,
        );
        const range = pair !== undefined && isScalar(pair.key) ? pair.key.range : undefined;
        if (range != null) return `:${lineCounter.linePos(range[0]).line}`;
      }
    }
    for (let depth = path.length; depth > 0; depth--) {
      const node = document.getIn(path.slice(0, depth) as unknown[], true) as
        { range?: [number, number, number] } | undefined;
      if (node?.range !== undefined) return `:${lineCounter.linePos(node.range[0]).line}`;
    }
    return "";
  };
}

/** Validates raw config; errors name `source:line`, the key path, what was expected, and a suggestion. */
export function validateServeConfig(
  raw: unknown,
  source: string,
  locate: (path: readonly PropertyKey[], key?: string) => string = () => "",
): ServeConfig {
  const result = serveConfigSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.flatMap((issue) => {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      const known = shapeKeys(serveConfigSchema, issue.path) ?? [];
      return issue.keys.map((key) => {
        const suggestion = closestName(key, known);
        const keyPath = path === "" ? key : `${path}.${key}`;
        return `${source}${locate(issue.path, key)}: ${keyPath}: unknown key${suggestion === undefined ? "" : ` (did you mean "${suggestion}"?)`}`;
      });
    }
    return [`${source}${locate(issue.path)}: ${path === "" ? "(top level)" : path}: ${issue.message}`];
  });
  throw new UsageError(`invalid serve config\n  ${lines.join("\n  ")}`);
}

export function parseServeConfigText(text: string, source: string, baseDir: string): LoadedServeConfig {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    const error = document.errors[0]!;
    const position = lineCounter.linePos(error.pos[0]);
    throw new UsageError(
      `${source}:${position.line}:${position.col}: YAML syntax error: ${error.message.split("\n")[0]}`,
    );
  }
  const raw: unknown = document.toJS();
  if (raw !== null && raw !== undefined && (typeof raw !== "object" || Array.isArray(raw)))
    throw new UsageError(`${source}: expected a mapping of config keys at the top level`);
  const config = validateServeConfig(raw, source, locator(document, lineCounter));
  return { config, source, baseDir };
}

export function loadServeConfig(path: string): LoadedServeConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read serve config ${path}: ${(error as Error).message}`);
  }
  return parseServeConfigText(text, path, dirname(resolve(path)));
}
