/**
 * Configuration of the Kthena (formerly MatrixInfer) autoscaler: our own snake_case schema
 * (`kthenaConfigSchema`) and a loader for upstream's Kubernetes YAML (`loadKthenaPolicyText`).
 *
 * The loader accepts, unchanged, every API generation (autoscalers spec §4.1):
 * - the MatrixInfer docs' binding (seed 003): `AutoscalingPolicyBinding.spec.scalingConfiguration
 *   {minReplicas, maxReplicas, target.targetRef, metricTargets: {name: value}}` (or
 *   `optimizerConfiguration.params` for several types) with an optional `policyRef` to an
 *   `AutoscalingPolicy {tolerancePercent, behavior}` in the same file;
 * - the binding era (≤ v0.4.0): policy `metrics: [{metricName, targetValue}]` and a binding with
 *   `homogeneousTarget` / `heterogeneousTarget` (`metricEndpoint`, `subTarget {kind: Role, name}`);
 * - HEAD: one `AutoscalingPolicy` with `metrics: [{name, targetValue}]` and exactly one of
 *   `homogeneousTarget`, `heterogeneousTarget`, `disaggregatedTarget`, with per-metric
 *   `metricSources` (`pod` → read from the replicas; `prometheus` → `observation.external[name]`).
 * Any apiVersion in the matrixinfer.ai, volcano.sh (`workload.serving.volcano.sh`) or kthena groups.
 *
 * Defaults (spec §4.2): the "webhook" regime by default, i.e. what a user applying the YAML to a
 * cluster with Kthena's mutating webhook gets: an omitted `behavior`, `scaleUp`, `scaleDown`,
 * `stablePolicy` or `panicPolicy` block is injected whole (scale-up +4 replicas or +100 % per minute,
 * panic DISABLED, scale-down unlimited after a 5 min stabilization window); a block given in part gets
 * the CRD's per-field defaults (1 instance / 100 % / 15 s / Or; panic 1000 %, threshold 200 %, hold
 * 60 s) plus the webhook's `stabilizationWindow` (5 min down, 0 s up). The "crd" regime (no webhook)
 * fills every block with the CRD per-field defaults and no stabilization windows.
 *
 * Deviations, on purpose: minReplicas > maxReplicas is refused (upstream accepts it for homogeneous
 * and heterogeneous targets, kthena#1668) unless `upstream_compat`; a heterogeneous param without
 * `cost` takes the pool's cost per replica-hour from the observation (upstream: cost 0) unless
 * `upstream_compat`; a metric without a `metricSources` entry is read from the replicas (upstream
 * treats it as missing).
 */
import { readFileSync } from "node:fs";
import { LineCounter, parseAllDocuments } from "yaml";
import type { Document } from "yaml";
import { z } from "zod";
import { UsageError, closestName } from "../../errors.ts";
import { COUNTERS, GAUGES, HISTOGRAMS } from "../types.ts";

// ---------------------------------------------------------------------------------------------
// Metric catalog

/** Where a Kthena metric name is read from on one replica. */
export interface MetricBinding {
  readonly kind: "gauge" | "counter" | "histogram";
  /** Keys tried in order in the replica's gauges / counters / histograms. */
  readonly keys: readonly string[];
  /** Multiplier on the value (histogram seconds → milliseconds for `inference_latency_ms`). */
  readonly scale: number;
  /** Whether splitscale's simulator produces it (others only exist where a live engine exposes them). */
  readonly simulated: boolean;
}

const gauge = (key: string, simulated = true, ...more: string[]): MetricBinding => ({
  kind: "gauge",
  keys: [key, ...more],
  scale: 1,
  simulated,
});
const counter = (key: string, ...more: string[]): MetricBinding => ({
  kind: "counter",
  keys: [key, ...more],
  scale: 1,
  simulated: true,
});
const histogram = (key: string, scale = 1): MetricBinding => ({
  kind: "histogram",
  keys: [key],
  scale,
  simulated: true,
});

/**
 * Metric names a pod-sourced Kthena metric may use, and what each reads.
 *
 * Available in simulation: the gauges `num_requests_running`, `num_requests_waiting`,
 * `concurrent_requests` (running + waiting), `kv_cache_usage_perc` (0..1), `gpu_utilization`
 * (percent), `pending_prefill_tokens`; the counters `prompt_tokens_total`, `generation_tokens_total`,
 * `request_success_total` and the seed's `request_count`, `token_in_count`, `token_out_count` (raw
 * cumulative values summed, as upstream does: use them only with care); the histograms
 * `time_to_first_token_seconds`, `inter_token_latency_seconds`, `e2e_request_latency_seconds` and the
 * seed's `inference_latency_ms` (p95 of the last ≥ 60 s, upstream's fixed quantile).
 *
 * Not simulated (read only where a live engine exposes a gauge of that name, otherwise missing):
 * `cpu_utilization`, `cpu` (reads `cpu_utilization`), `memory_usage`, `gpu_memory_usage`.
 *
 * vLLM / SGLang exposition names (`vllm:num_requests_waiting`, `vllm:gpu_cache_usage_perc`,
 * `sglang:num_queue_reqs`, …) are accepted as aliases of the canonical names.
 */
export const KTHENA_METRICS: Readonly<Record<string, MetricBinding>> = {
  [GAUGES.running]: gauge(GAUGES.running),
  [GAUGES.waiting]: gauge(GAUGES.waiting),
  [GAUGES.concurrent]: gauge(GAUGES.concurrent),
  [GAUGES.kvCacheUsage]: gauge(GAUGES.kvCacheUsage),
  [GAUGES.gpuUtilization]: gauge(GAUGES.gpuUtilization),
  [GAUGES.pendingPrefillTokens]: gauge(GAUGES.pendingPrefillTokens),
  [COUNTERS.promptTokens]: counter(COUNTERS.promptTokens),
  [COUNTERS.generationTokens]: counter(COUNTERS.generationTokens),
  [COUNTERS.requestsCompleted]: counter(COUNTERS.requestsCompleted),
  [HISTOGRAMS.ttft]: histogram(HISTOGRAMS.ttft),
  [HISTOGRAMS.itl]: histogram(HISTOGRAMS.itl),
  [HISTOGRAMS.e2e]: histogram(HISTOGRAMS.e2e),
  // The MatrixInfer docs' metric list (seed 003).
  cpu_utilization: gauge("cpu_utilization", false),
  cpu: gauge("cpu_utilization", false, "cpu"),
  memory_usage: gauge("memory_usage", false),
  gpu_memory_usage: gauge("gpu_memory_usage", false),
  request_count: counter(COUNTERS.requestsCompleted, "request_count"),
  token_in_count: counter(COUNTERS.promptTokens, "token_in_count"),
  token_out_count: counter(COUNTERS.generationTokens, "token_out_count"),
  inference_latency_ms: histogram(HISTOGRAMS.e2e, 1000),
};

const METRIC_ALIASES: Readonly<Record<string, string>> = {
  "vllm:num_requests_running": GAUGES.running,
  "vllm:num_requests_waiting": GAUGES.waiting,
  "vllm:kv_cache_usage_perc": GAUGES.kvCacheUsage,
  "vllm:gpu_cache_usage_perc": GAUGES.kvCacheUsage,
  "vllm:time_to_first_token_seconds": HISTOGRAMS.ttft,
  "vllm:inter_token_latency_seconds": HISTOGRAMS.itl,
  "vllm:time_per_output_token_seconds": HISTOGRAMS.itl,
  "vllm:e2e_request_latency_seconds": HISTOGRAMS.e2e,
  "vllm:prompt_tokens_total": COUNTERS.promptTokens,
  "vllm:generation_tokens_total": COUNTERS.generationTokens,
  "vllm:request_success_total": COUNTERS.requestsCompleted,
  "sglang:num_running_reqs": GAUGES.running,
  "sglang:num_queue_reqs": GAUGES.waiting,
};

export const KNOWN_METRIC_NAMES: readonly string[] = Object.keys(KTHENA_METRICS);

/** The catalog entry for a pod metric name (canonical or alias), or undefined when unknown. */
export function metricBinding(name: string): MetricBinding | undefined {
  return KTHENA_METRICS[METRIC_ALIASES[name] ?? name];
}

function unknownMetricMessage(name: string): string {
  const suggestion = closestName(name, [...KNOWN_METRIC_NAMES, ...Object.keys(METRIC_ALIASES)]);
  return (
    `unknown metric "${name}"${suggestion === undefined ? "" : `, did you mean ${suggestion}?`} ` +
    `(known: ${KNOWN_METRIC_NAMES.join(", ")}; use a prometheus metric source for anything else)`
  );
}

// ---------------------------------------------------------------------------------------------
// Our own schema (snake_case)

const windowSeconds = z.number().min(0).max(1800);
const percentInt = z.int().min(0).max(1000);
const selectPolicy = z.enum(["Or", "And"]);

/** Scale-up stable policy; field defaults are the CRD's, the stabilization default the webhook's (0 s). */
const scaleUpStableSchema = z.strictObject({
  /** Replicas that may be added per period (relative to the lowest level in the period). */
  instances: z.int().nonnegative().default(1),
  /** Percent of that level that may be added per period. */
  percent: percentInt.default(100),
  period_s: windowSeconds.default(15),
  /** Or: the larger of the two limits; And: the smaller. */
  select_policy: selectPolicy.default("Or"),
  /** Scale up only to the lowest recommendation of this window (0 = off). */
  stabilization_window_s: windowSeconds.default(0),
});

/** Scale-down policy; field defaults are the CRD's, the stabilization default the webhook's (300 s). */
const scaleDownSchema = scaleUpStableSchema.extend({
  /** Scale down only to the highest recommendation of this window. */
  stabilization_window_s: windowSeconds.default(300),
});

const panicSchema = z.strictObject({
  /** Panic scale-up cap: past + trunc(past·percent/100) per period. */
  percent: percentInt.default(1000),
  /** 0 disables the panic cap (any increase at once). */
  period_s: windowSeconds.default(0),
  /** Enter panic when recommended ≥ threshold % of current (replica counts). */
  threshold_percent: z.int().min(110).max(1000).default(200),
  /** Stay in panic this long after the last crossing; 0 disables panic. */
  hold_s: z.number().nonnegative().default(60),
});

/** What Kthena's mutating webhook injects for an omitted block (spec §4.2). */
export const WEBHOOK_SCALE_UP_STABLE = {
  instances: 4,
  percent: 100,
  period_s: 60,
  select_policy: "Or",
  stabilization_window_s: 0,
} as const;
export const WEBHOOK_PANIC = { percent: 0, period_s: 0, threshold_percent: 200, hold_s: 0 } as const;
export const WEBHOOK_SCALE_DOWN = {
  instances: 0,
  percent: 100,
  period_s: 60,
  select_policy: "Or",
  stabilization_window_s: 300,
} as const;

const scaleUpSchema = z.strictObject({
  stable: scaleUpStableSchema.default(WEBHOOK_SCALE_UP_STABLE),
  panic: panicSchema.default(WEBHOOK_PANIC),
});

const behaviorSchema = z.strictObject({
  scale_up: scaleUpSchema.default({ stable: WEBHOOK_SCALE_UP_STABLE, panic: WEBHOOK_PANIC }),
  scale_down: scaleDownSchema.default(WEBHOOK_SCALE_DOWN),
});

const metricSchema = z.strictObject({
  /** The policy's metric key (also the `observation.external` key for external metrics). */
  name: z.string().min(1),
  /** Per-replica target (must be > 0). */
  target_value: z.number().positive().finite(),
  /** `pod`: per-replica values from the replicas' scrapes; `external`: a total from `observation.external`. */
  source: z.enum(["pod", "external"]).default("pod"),
  /** For pod sources: the replica metric to read when it differs from `name` (e.g. "vllm:num_requests_waiting"). */
  pod_metric: z.string().min(1).optional(),
});

const replicas = z.int().min(0).max(1_000_000);

const homogeneousSchema = z.strictObject({
  kind: z.literal("homogeneous"),
  /** The pool to scale; unset (or naming no pool) = every pool given at creation, independently. */
  pool: z.string().optional(),
  /** A role-level target (binding-era `subTarget {kind: Role}`): the pool with this name or role. */
  role: z.string().optional(),
  /** Bounds; unset = the pool's own min/max from the observation. */
  min_replicas: replicas.optional(),
  max_replicas: replicas.optional(),
});

const heterogeneousSchema = z.strictObject({
  kind: z.literal("heterogeneous"),
  /** Geometric growth of the cost blocks (200 = blocks of 1, 2, 4, …; 100 = one block per type). */
  cost_expansion_rate_percent: z.int().nonnegative().default(200),
  params: z
    .array(
      z.strictObject({
        pool: z.string().min(1),
        /** Relative cost of one replica; unset = the pool's cost per replica-hour. */
        cost: z.number().nonnegative().optional(),
        min_replicas: replicas,
        max_replicas: replicas,
      }),
    )
    .min(1),
});

const disaggregatedSchema = z.strictObject({
  kind: z.literal("disaggregated"),
  /** The ModelServing name (informational: roles are matched to pools by name, then by role). */
  pool: z.string().optional(),
  roles: z.record(
    z.string().min(1),
    z.strictObject({
      min_replicas: replicas,
      max_replicas: replicas,
      /** Overrides the policy's metrics for this role. */
      metrics: z.array(metricSchema).min(1).optional(),
    }),
  ),
  ratio: z
    .strictObject({
      numerator_role: z.string().min(1),
      denominator_role: z.string().min(1),
      min_ratio: z.number().nonnegative().finite(),
      max_ratio: z.number().positive().finite(),
    })
    .optional(),
});

export const kthenaConfigSchema = z
  .strictObject({
    /** Shown in reasons. */
    name: z.string().default("kthena"),
    /** Seconds between decisions (Kthena's --autoscaling-sync-period-seconds). */
    interval_s: z.number().positive().default(15),
    /**
     * Reproduce upstream exactly (kthena HEAD 3cc05728): the summed-metric recommendation (tolerance on
     * Σ/target, unready divisor 1 + unready), a pool's metrics frozen while any replica has restarted
     * or is draining or one ready replica cannot be scraped, min > max accepted, cost 0 when unset.
     */
    upstream_compat: z.boolean().default(false),
    /** Dead band around the target, in percent of it. */
    tolerance_percent: z.number().min(0).max(100).default(10),
    metrics: z.array(metricSchema).default([]),
    behavior: behaviorSchema.default({
      scale_up: { stable: WEBHOOK_SCALE_UP_STABLE, panic: WEBHOOK_PANIC },
      scale_down: WEBHOOK_SCALE_DOWN,
    }),
    target: z
      .discriminatedUnion("kind", [homogeneousSchema, heterogeneousSchema, disaggregatedSchema])
      .default({ kind: "homogeneous" }),
  })
  .superRefine((config, context) => {
    const issue = (path: (string | number)[], message: string): void => {
      context.addIssue({ code: "custom", path, message });
    };
    const checkMetrics = (
      metrics: readonly z.output<typeof metricSchema>[],
      at: (string | number)[],
    ): void => {
      const seen = new Set<string>();
      metrics.forEach((metric, index) => {
        if (seen.has(metric.name)) issue([...at, index, "name"], `duplicate metric "${metric.name}"`);
        seen.add(metric.name);
        const podMetric = metric.pod_metric ?? metric.name;
        if (metric.source === "pod" && metricBinding(podMetric) === undefined) {
          issue(
            [...at, index, metric.pod_metric === undefined ? "name" : "pod_metric"],
            unknownMetricMessage(podMetric),
          );
        }
      });
    };
    checkMetrics(config.metrics, ["metrics"]);
    const target = config.target;
    const minAboveMax = (min: number | undefined, max: number | undefined): boolean =>
      min !== undefined && max !== undefined && min > max;
    if (target.kind !== "disaggregated" && config.metrics.length === 0) {
      issue(["metrics"], `a ${target.kind} target needs at least one metric`);
    }
    if (
      target.kind === "homogeneous" &&
      !config.upstream_compat &&
      minAboveMax(target.min_replicas, target.max_replicas)
    ) {
      issue(
        ["target", "min_replicas"],
        `min_replicas (${target.min_replicas}) must be <= max_replicas (${target.max_replicas})`,
      );
    }
    if (target.kind === "heterogeneous" && !config.upstream_compat) {
      target.params.forEach((param, index) => {
        if (minAboveMax(param.min_replicas, param.max_replicas)) {
          issue(
            ["target", "params", index, "min_replicas"],
            `min_replicas (${param.min_replicas}) must be <= max_replicas (${param.max_replicas})`,
          );
        }
      });
    }
    if (target.kind === "disaggregated") {
      const roles = Object.keys(target.roles);
      if (roles.length < 1 || roles.length > 2)
        issue(["target", "roles"], `expected 1 or 2 roles, got ${roles.length}`);
      for (const [role, spec] of Object.entries(target.roles)) {
        if (spec.min_replicas > spec.max_replicas) {
          issue(
            ["target", "roles", role, "min_replicas"],
            `min_replicas (${spec.min_replicas}) must be <= max_replicas (${spec.max_replicas})`,
          );
        }
        const fixed = spec.min_replicas === spec.max_replicas && spec.min_replicas > 0;
        if (spec.metrics !== undefined) checkMetrics(spec.metrics, ["target", "roles", role, "metrics"]);
        else if (!fixed && config.metrics.length === 0) {
          issue(
            ["target", "roles", role, "metrics"],
            `role "${role}" is not fixed (min != max) and has no metrics`,
          );
        }
      }
      const ratio = target.ratio;
      if (ratio !== undefined) {
        for (const key of ["numerator_role", "denominator_role"] as const) {
          if (!(ratio[key] in target.roles)) {
            issue(
              ["target", "ratio", key],
              `role "${ratio[key]}" is not one of the roles (${roles.join(", ")})`,
            );
          }
        }
        if (ratio.numerator_role === ratio.denominator_role) {
          issue(["target", "ratio", "denominator_role"], "numerator_role and denominator_role must differ");
        }
        if (ratio.min_ratio > ratio.max_ratio) {
          issue(
            ["target", "ratio", "min_ratio"],
            `min_ratio (${ratio.min_ratio}) must be <= max_ratio (${ratio.max_ratio})`,
          );
        }
      }
    }
  });

export type KthenaConfig = z.output<typeof kthenaConfigSchema>;
export type KthenaConfigInput = z.input<typeof kthenaConfigSchema>;
export type KthenaMetric = z.output<typeof metricSchema>;
export type KthenaBehavior = KthenaConfig["behavior"];
export type KthenaTarget = KthenaConfig["target"];

/** Validates our own snake_case config; errors name `where` and the key path. */
export function parseKthenaConfig(input: unknown, where = "kthena"): KthenaConfig {
  const result = kthenaConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const path = formatPath(issue.path);
    if (issue.code === "unrecognized_keys") {
      const known = keysAt(kthenaConfigSchema, issue.path);
      return issue.keys
        .map((key) => `${where}: ${joinPath(path, key)}: ${unknownFieldMessage(key, known)}`)
        .join("\n  ");
    }
    return `${where}: ${path === "" ? "(top level)" : path}: ${cleanMessage(issue.message)}`;
  });
  throw new UsageError(lines.length === 1 ? lines[0]! : `invalid Kthena config\n  ${lines.join("\n  ")}`);
}

// ---------------------------------------------------------------------------------------------
// Kubernetes YAML schemas (camelCase, as upstream spells them)

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  μs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

/** Seconds in a Go duration ("15s", "5m", "1h30m", "500ms", "0"), or undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  if (text.length === 0) return undefined;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let position = 0;
  while (position < text.length) {
    part.lastIndex = position;
    const match = part.exec(text);
    if (match === null) return undefined;
    total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
    position = part.lastIndex;
  }
  return total;
}

const QUANTITY_SUFFIXES: Readonly<Record<string, number>> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes resource.Quantity ("80", "500m", "1.5k", "2Gi", "1e3") as a number, or undefined. */
export function parseQuantity(value: number | string): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  const match = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/.exec(
    value.trim(),
  );
  if (match === null) return undefined;
  const base = Number(match[1]);
  if (match[2] !== undefined) return base * 10 ** Number(match[2].slice(1));
  return base * (match[3] === undefined ? 1 : QUANTITY_SUFFIXES[match[3]]!);
}

const duration = z
  .string({ error: 'expected a Go duration such as "15s", "5m" or "1h30m"' })
  .refine((text) => parseDuration(text) !== undefined, {
    message: 'expected a Go duration such as "15s", "5m" or "1h30m"',
  });
const quantityMessage = 'expected a number or a Kubernetes quantity such as "80", "500m" or "1.5k"';
const quantity = z
  .union([z.number(), z.string()], { error: quantityMessage })
  .refine((value) => parseQuantity(value) !== undefined, { message: quantityMessage });
const int32Replicas = z.int().min(0).max(1_000_000);

const objectReference = z.strictObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  name: z.string().min(1),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  fieldPath: z.string().optional(),
});

const labelSelector = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(z.strictObject({ key: z.string(), operator: z.string(), values: z.array(z.string()).optional() }))
    .optional(),
});

const metricSource = z
  .strictObject({
    pod: z
      .strictObject({
        name: z.string().optional(),
        uri: z.string().optional(),
        port: z.int().optional(),
        labelSelector: labelSelector.optional(),
      })
      .optional(),
    prometheus: z
      .strictObject({
        serverURL: z.string().min(1),
        query: z.string().min(1),
        auth: z.looseObject({}).optional(),
      })
      .optional(),
  })
  .refine((source) => (source.pod === undefined) !== (source.prometheus === undefined), {
    message: "expected exactly one of pod or prometheus",
  });

/** A scaling target across the eras: HEAD `{targetRef, metricSources}`, v0.4 `{targetRef, metricEndpoint, subTarget}`, MatrixInfer `{name, kind, targetRef, metricFrom}`. */
const k8sTarget = z
  .strictObject({
    targetRef: objectReference.optional(),
    metricSources: z.record(z.string(), metricSource).optional(),
    metricEndpoint: z
      .strictObject({
        uri: z.string().optional(),
        port: z.int().optional(),
        labelSelector: labelSelector.optional(),
      })
      .optional(),
    subTarget: z.strictObject({ kind: z.string().optional(), name: z.string().min(1) }).optional(),
    name: z.string().optional(),
    kind: z.string().optional(),
    additionalMatchLabels: z.record(z.string(), z.string()).optional(),
    metricFrom: z.strictObject({ uri: z.string().optional(), port: z.int().optional() }).optional(),
  })
  .refine((target) => target.targetRef !== undefined || target.name !== undefined, {
    message: "expected targetRef.name (or the MatrixInfer-era name)",
    path: ["targetRef"],
  });

const policyMetric = z
  .strictObject({
    name: z.string().min(1).optional(),
    metricName: z.string().min(1).optional(),
    targetValue: quantity,
  })
  .refine((metric) => (metric.name === undefined) !== (metric.metricName === undefined), {
    message: "expected exactly one of name (HEAD) or metricName (binding era)",
  });

const k8sStable = z.strictObject({
  instances: z.int().min(0).optional(),
  percent: z.int().min(0).max(1000).optional(),
  period: duration.optional(),
  selectPolicy: selectPolicy.optional(),
  stabilizationWindow: duration.optional(),
});

const k8sPanic = z.strictObject({
  percent: z.int().min(0).max(1000).optional(),
  period: duration.optional(),
  panicThresholdPercent: z.int().min(110).max(1000).optional(),
  panicModeHold: duration.optional(),
});

const k8sBehavior = z.strictObject({
  scaleUp: z
    .strictObject({ stablePolicy: k8sStable.optional(), panicPolicy: k8sPanic.optional() })
    .optional(),
  scaleDown: k8sStable.optional(),
});

const k8sHomogeneous = z.strictObject({
  target: k8sTarget,
  minReplicas: int32Replicas,
  maxReplicas: int32Replicas,
});

const k8sParams = z
  .array(
    z.strictObject({
      target: k8sTarget,
      cost: z.number().min(0).optional(),
      minReplicas: int32Replicas,
      maxReplicas: int32Replicas,
    }),
  )
  .min(1);

const k8sHeterogeneous = z.strictObject({
  params: k8sParams,
  costExpansionRatePercent: z.int().min(0).optional(),
});

const k8sDisaggregated = z.strictObject({
  targetRef: objectReference,
  roles: z.record(
    z.string().min(1),
    z.strictObject({
      minReplicas: int32Replicas,
      maxReplicas: int32Replicas,
      metrics: z.array(policyMetric).min(1).optional(),
      metricSources: z.record(z.string(), metricSource).optional(),
    }),
  ),
  ratioConstraint: z
    .strictObject({
      numeratorRole: z.string().min(1),
      denominatorRole: z.string().min(1),
      minRatio: quantity,
      maxRatio: quantity,
    })
    .optional(),
});

const API_VERSION_MESSAGE =
  "expected an apiVersion in the matrixinfer.ai, volcano.sh or kthena groups, such as " +
  "registry.matrixinfer.ai/v1alpha1 or workload.serving.volcano.sh/v1alpha1";

const apiVersion = z.string({ error: API_VERSION_MESSAGE }).refine((text) => {
  const match = /^([a-z0-9.-]+)\/(v\d+(?:(?:alpha|beta)\d+)?)$/.exec(text);
  if (match === null) return false;
  const group = match[1]!;
  return /(^|\.)(matrixinfer\.ai|volcano\.sh)$/.test(group) || group.split(".").includes("kthena");
}, API_VERSION_MESSAGE);

const metadata = z.looseObject({ name: z.string().min(1), namespace: z.string().optional() });

const policyDocument = z.strictObject({
  apiVersion,
  kind: z.literal("AutoscalingPolicy"),
  metadata,
  spec: z
    .strictObject({
      tolerancePercent: z.int().min(0).max(100).optional(),
      metrics: z.array(policyMetric).optional(),
      behavior: k8sBehavior.optional(),
      homogeneousTarget: k8sHomogeneous.optional(),
      heterogeneousTarget: k8sHeterogeneous.optional(),
      disaggregatedTarget: k8sDisaggregated.optional(),
    })
    .default({}),
  status: z.unknown().optional(),
});

const bindingDocument = z.strictObject({
  apiVersion,
  kind: z.literal("AutoscalingPolicyBinding"),
  metadata,
  spec: z.strictObject({
    policyRef: z.strictObject({ name: z.string().min(1) }).optional(),
    scalingConfiguration: z
      .strictObject({
        target: k8sTarget,
        minReplicas: int32Replicas,
        maxReplicas: int32Replicas,
        metricTargets: z.record(z.string(), quantity).optional(),
      })
      .optional(),
    optimizerConfiguration: z
      .strictObject({
        params: k8sParams,
        costExpansionRatePercent: z.int().min(0).optional(),
        metricTargets: z.record(z.string(), quantity).optional(),
      })
      .optional(),
    homogeneousTarget: k8sHomogeneous.optional(),
    heterogeneousTarget: k8sHeterogeneous.optional(),
  }),
  status: z.unknown().optional(),
});

type PolicyDocument = z.output<typeof policyDocument>;
type BindingDocument = z.output<typeof bindingDocument>;
type K8sTarget = z.output<typeof k8sTarget>;
type K8sMetricSource = z.output<typeof metricSource>;
type K8sStable = z.output<typeof k8sStable>;
type K8sPanic = z.output<typeof k8sPanic>;
type K8sBehavior = z.output<typeof k8sBehavior>;

const KINDS = ["AutoscalingPolicy", "AutoscalingPolicyBinding"] as const;

// ---------------------------------------------------------------------------------------------
// Loader

export interface KthenaLoadOptions {
  /** "webhook" (default): what applying the YAML to a cluster yields; "crd": CRD defaults only (spec §4.2). */
  readonly defaults?: "webhook" | "crd";
  /** Sets `upstream_compat` on the result and accepts min > max as upstream does (kthena#1668). */
  readonly upstream_compat?: boolean;
  /** With several targets in one file: the binding (or standalone policy) to load, by metadata.name. */
  readonly target?: string;
}

type Path = readonly (string | number)[];

interface LoadedDocument {
  readonly index: number;
  readonly document: Document.Parsed;
  readonly kind: string;
  readonly name: string;
}

/** Collects errors with their document and YAML line, then throws them together. */
class Problems {
  private readonly lines: string[] = [];
  constructor(
    private readonly source: string,
    private readonly lineCounter: LineCounter,
  ) {}

  add(doc: LoadedDocument, path: Path, message: string): void {
    this.addRaw(
      `${this.source}${this.lineOf(doc.document, path)}: document ${doc.index + 1} (${doc.kind} "${doc.name}"): ${formatPath(path)}: ${message}`,
    );
  }

  addRaw(line: string): void {
    // Inherited metrics are checked once per role: report each problem once.
    if (!this.lines.includes(line)) this.lines.push(line);
  }

  get empty(): boolean {
    return this.lines.length === 0;
  }

  throwIfAny(): void {
    if (this.lines.length === 0) return;
    throw new UsageError(
      this.lines.length === 1 ? this.lines[0]! : `invalid Kthena policy file\n  ${this.lines.join("\n  ")}`,
    );
  }

  /** ":LINE" of the deepest node of `path` that exists in the document. */
  lineOf(document: Document.Parsed, path: Path): string {
    for (let depth = path.length; depth >= 0; depth--) {
      const node: unknown = depth === 0 ? document.contents : document.getIn(path.slice(0, depth), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range !== undefined) return `:${this.lineCounter.linePos(range[0]).line}`;
    }
    return "";
  }
}

/** Reads a Kthena policy file (see `loadKthenaPolicyText`). */
export function loadKthenaPolicyFile(path: string, options: KthenaLoadOptions = {}): KthenaConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read Kthena policy ${path}: ${(error as Error).message}`);
  }
  return loadKthenaPolicyText(text, path, options);
}

/**
 * Parses upstream Kthena / MatrixInfer YAML (one or more documents) into a `KthenaConfig`. The file must
 * define exactly one scaling target (a binding, or an AutoscalingPolicy with its own target) unless
 * `options.target` picks one. Errors name the file, the document, the line, the field and what was expected.
 */
export function loadKthenaPolicyText(
  text: string,
  source: string,
  options: KthenaLoadOptions = {},
): KthenaConfig {
  const lineCounter = new LineCounter();
  const problems = new Problems(source, lineCounter);
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  if (!Array.isArray(documents)) throw new UsageError(`${source}: no YAML documents`);
  const policies: { doc: LoadedDocument; value: PolicyDocument }[] = [];
  const bindings: { doc: LoadedDocument; value: BindingDocument }[] = [];
  documents.forEach((document, index) => {
    if (document.errors.length > 0) {
      const error = document.errors[0]!;
      const position = lineCounter.linePos(error.pos[0]);
      problems.addRaw(
        `${source}:${position.line}:${position.col}: document ${index + 1}: YAML syntax error: ${error.message.split("\n")[0]}`,
      );
      return;
    }
    const raw: unknown = document.toJS();
    if (raw === null || raw === undefined) return;
    const record =
      typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
    const kind = typeof record?.kind === "string" ? record.kind : "";
    const meta = record?.metadata as Record<string, unknown> | undefined;
    const name = typeof meta?.name === "string" ? meta.name : "?";
    const doc: LoadedDocument = { index, document, kind: kind === "" ? "?" : kind, name };
    if (record === undefined) {
      problems.add(doc, [], "expected a mapping (a Kubernetes object)");
      return;
    }
    if (!(KINDS as readonly string[]).includes(kind)) {
      const suggestion = kind === "" ? undefined : closestName(kind, KINDS);
      if (kind === "" || suggestion !== undefined) {
        problems.add(
          doc,
          ["kind"],
          `${kind === "" ? "missing" : `unknown kind "${kind}"`}` +
            `${suggestion === undefined ? "" : `, did you mean ${suggestion}?`} (expected ${KINDS.join(" or ")})`,
        );
      }
      return; // other objects (the ModelServing itself, ...) may share the file
    }
    const schema = kind === "AutoscalingPolicy" ? policyDocument : bindingDocument;
    const result = schema.safeParse(raw);
    if (!result.success) {
      // A misspelt field also makes the real one "missing": report the typo only.
      const suggested = new Set<string>();
      for (const issue of result.error.issues) {
        if (issue.code !== "unrecognized_keys") continue;
        const known = keysAt(schema, issue.path);
        for (const key of issue.keys) {
          const suggestion = known === undefined ? undefined : closestName(key, known);
          if (suggestion !== undefined) suggested.add(formatPath([...issue.path, suggestion]));
          problems.add(doc, [...pathOf(issue.path), key], unknownFieldMessage(key, known));
        }
      }
      for (const issue of result.error.issues) {
        if (issue.code === "unrecognized_keys" || suggested.has(formatPath(issue.path))) continue;
        problems.add(doc, pathOf(issue.path), cleanMessage(issue.message));
      }
      return;
    }
    if (result.data.kind === "AutoscalingPolicy") policies.push({ doc, value: result.data });
    else bindings.push({ doc, value: result.data });
  });
  problems.throwIfAny();

  const policyByName = new Map<string, { doc: LoadedDocument; value: PolicyDocument }>();
  for (const policy of policies) {
    const previous = policyByName.get(policy.value.metadata.name);
    if (previous !== undefined) {
      problems.add(
        policy.doc,
        ["metadata", "name"],
        `duplicate AutoscalingPolicy name (also document ${previous.doc.index + 1})`,
      );
    }
    policyByName.set(policy.value.metadata.name, policy);
  }
  problems.throwIfAny();

  type Unit =
    | { kind: "binding"; doc: LoadedDocument; binding: BindingDocument }
    | { kind: "policy"; doc: LoadedDocument; policy: PolicyDocument };
  const units: Unit[] = [
    ...bindings.map((binding): Unit => ({ kind: "binding", doc: binding.doc, binding: binding.value })),
    ...policies
      .filter(({ value }) => hasTarget(value))
      .map((policy): Unit => ({ kind: "policy", doc: policy.doc, policy: policy.value })),
  ];
  const describe = (unit: Unit): string =>
    `${unit.doc.kind} "${unit.doc.name}" (document ${unit.doc.index + 1})`;
  let chosen: Unit | undefined;
  if (options.target !== undefined) {
    chosen = units.find((unit) => unit.doc.name === options.target);
    if (chosen === undefined) {
      const suggestion = closestName(
        options.target,
        units.map((unit) => unit.doc.name),
      );
      throw new UsageError(
        `${source}: no scaling target named "${options.target}"${suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`}; ` +
          `targets here: ${units.map(describe).join(", ") || "none"}`,
      );
    }
  } else if (units.length === 1) chosen = units[0];
  else if (units.length === 0) {
    throw new UsageError(
      `${source}: no scaling target: expected an AutoscalingPolicyBinding, or an AutoscalingPolicy with ` +
        `homogeneousTarget, heterogeneousTarget or disaggregatedTarget`,
    );
  } else {
    throw new UsageError(
      `${source}: ${units.length} scaling targets (${units.map(describe).join(", ")}); splitscale loads one per ` +
        `file: pick one by name`,
    );
  }
  const unit = chosen!;
  const context: BuildContext = { problems, options, regime: options.defaults ?? "webhook" };
  let raw: KthenaConfigInput;
  if (unit.kind === "policy") raw = fromPolicy(context, unit.doc, unit.policy);
  else {
    let policy: { doc: LoadedDocument; value: PolicyDocument } | undefined;
    const ref = unit.binding.spec.policyRef?.name;
    if (ref !== undefined) {
      policy = policyByName.get(ref);
      if (policy === undefined) {
        const names = [...policyByName.keys()];
        const suggestion = closestName(ref, names);
        problems.add(
          unit.doc,
          ["spec", "policyRef", "name"],
          `AutoscalingPolicy "${ref}" is not defined in this file` +
            `${suggestion === undefined ? "" : `, did you mean ${suggestion}?`}` +
            ` (policies here: ${names.length === 0 ? "none" : names.join(", ")})`,
        );
        problems.throwIfAny();
      }
    }
    raw = fromBinding(context, unit.doc, unit.binding, policy);
  }
  problems.throwIfAny();
  return parseKthenaConfig(raw, source);
}

function hasTarget(policy: PolicyDocument): boolean {
  const spec = policy.spec;
  return (
    spec.homogeneousTarget !== undefined ||
    spec.heterogeneousTarget !== undefined ||
    spec.disaggregatedTarget !== undefined
  );
}

interface BuildContext {
  readonly problems: Problems;
  readonly options: KthenaLoadOptions;
  readonly regime: "webhook" | "crd";
}

/** One metric in the making, with the YAML paths to blame. */
interface PendingMetric {
  readonly name: string;
  readonly value: number | string;
  readonly namePath: Path;
  readonly valuePath: Path;
}

function policyMetrics(
  metrics: readonly z.output<typeof policyMetric>[] | undefined,
  at: Path,
): PendingMetric[] {
  return (metrics ?? []).map((metric, index) => {
    const key = metric.name !== undefined ? "name" : "metricName";
    return {
      name: (metric.name ?? metric.metricName)!,
      value: metric.targetValue,
      namePath: [...at, index, key],
      valuePath: [...at, index, "targetValue"],
    };
  });
}

function metricTargets(targets: Readonly<Record<string, number | string>>, at: Path): PendingMetric[] {
  return Object.entries(targets).map(([name, value]) => ({
    name,
    value,
    namePath: [...at, name],
    valuePath: [...at, name],
  }));
}

/** Sources by metric name, each with the path of its entry. */
type SourceMap = ReadonlyMap<string, { source: K8sMetricSource; path: Path }>;

function sourcesOf(sources: Readonly<Record<string, K8sMetricSource>> | undefined, at: Path): SourceMap {
  return new Map(
    Object.entries(sources ?? {}).map(([name, source]) => [name, { source, path: [...at, name] }]),
  );
}

/** Validates names and targets and resolves each metric's source; reports problems against `doc`. */
function buildMetrics(
  context: BuildContext,
  doc: LoadedDocument,
  pending: readonly PendingMetric[],
  sources: SourceMap,
): KthenaMetric[] {
  const seen = new Set<string>();
  const out: KthenaMetric[] = [];
  for (const metric of pending) {
    if (seen.has(metric.name))
      context.problems.add(doc, metric.namePath, `duplicate metric "${metric.name}"`);
    seen.add(metric.name);
    const target = parseQuantity(metric.value);
    if (target === undefined || !(target > 0)) {
      context.problems.add(
        doc,
        metric.valuePath,
        `metric target must be a number > 0, got ${JSON.stringify(metric.value)}`,
      );
      continue;
    }
    const entry = sources.get(metric.name);
    if (entry?.source.prometheus !== undefined) {
      out.push({ name: metric.name, target_value: target, source: "external" });
      continue;
    }
    const podMetric = entry?.source.pod?.name ?? metric.name;
    if (metricBinding(podMetric) === undefined) {
      const path = entry?.source.pod?.name !== undefined ? [...entry.path, "pod", "name"] : metric.namePath;
      context.problems.add(doc, path, unknownMetricMessage(podMetric));
      continue;
    }
    out.push({
      name: metric.name,
      target_value: target,
      source: "pod",
      ...(podMetric !== metric.name ? { pod_metric: podMetric } : {}),
    });
  }
  return out;
}

function targetName(target: K8sTarget): string {
  return target.targetRef?.name ?? target.name ?? "";
}

function checkBounds(
  context: BuildContext,
  doc: LoadedDocument,
  at: Path,
  bounds: { minReplicas: number; maxReplicas: number },
  always = false,
): void {
  if (bounds.minReplicas <= bounds.maxReplicas || (context.options.upstream_compat && !always)) return;
  context.problems.add(
    doc,
    [...at, "minReplicas"],
    `minReplicas (${bounds.minReplicas}) must be <= maxReplicas (${bounds.maxReplicas})` +
      (always ? "" : " (upstream accepts this, kthena#1668; load with upstream_compat to allow it)"),
  );
}

function heterogeneousParams(
  context: BuildContext,
  doc: LoadedDocument,
  params: z.output<typeof k8sParams>,
  at: Path,
): z.input<typeof heterogeneousSchema>["params"] {
  return params.map((param, index) => {
    checkBounds(context, doc, [...at, index], param);
    const cost = param.cost ?? (context.options.upstream_compat ? 0 : undefined);
    return {
      pool: targetName(param.target),
      ...(cost === undefined ? {} : { cost }),
      min_replicas: param.minReplicas,
      max_replicas: param.maxReplicas,
    };
  });
}

/** Per-param metricSources must agree on each metric's source (splitscale keeps one per metric). */
function heterogeneousSources(
  context: BuildContext,
  doc: LoadedDocument,
  params: z.output<typeof k8sParams>,
  at: Path,
): SourceMap {
  const merged = new Map<string, { source: K8sMetricSource; path: Path }>();
  params.forEach((param, index) => {
    for (const [name, entry] of sourcesOf(param.target.metricSources, [
      ...at,
      index,
      "target",
      "metricSources",
    ])) {
      const previous = merged.get(name);
      if (previous === undefined) merged.set(name, entry);
      else if ((previous.source.prometheus === undefined) !== (entry.source.prometheus === undefined)) {
        context.problems.add(
          doc,
          entry.path,
          `metric "${name}" must come from the same kind of source (pod or prometheus) in every param`,
        );
      }
    }
  });
  return merged;
}

function fromPolicy(context: BuildContext, doc: LoadedDocument, policy: PolicyDocument): KthenaConfigInput {
  const spec = policy.spec;
  const present = (["homogeneousTarget", "heterogeneousTarget", "disaggregatedTarget"] as const).filter(
    (key) => spec[key] !== undefined,
  );
  if (present.length > 1) {
    context.problems.add(
      doc,
      ["spec", present[1]!],
      `expected exactly one of homogeneousTarget, heterogeneousTarget, disaggregatedTarget (found ${present.join(", ")})`,
    );
  }
  const base = common(context, policy, policy.metadata.name);
  const pending = policyMetrics(spec.metrics, ["spec", "metrics"]);
  if (spec.homogeneousTarget !== undefined) {
    const target = spec.homogeneousTarget;
    const at = ["spec", "homogeneousTarget"];
    checkBounds(context, doc, at, target);
    const metrics = buildMetrics(
      context,
      doc,
      pending,
      sourcesOf(target.target.metricSources, [...at, "target", "metricSources"]),
    );
    if (pending.length === 0)
      context.problems.add(doc, ["spec", "metrics"], "a homogeneous target needs at least one metric");
    return { ...base, metrics, target: homogeneousTarget(target.target, target) };
  }
  if (spec.heterogeneousTarget !== undefined) {
    const target = spec.heterogeneousTarget;
    const at = ["spec", "heterogeneousTarget", "params"];
    const metrics = buildMetrics(
      context,
      doc,
      pending,
      heterogeneousSources(context, doc, target.params, at),
    );
    if (pending.length === 0)
      context.problems.add(doc, ["spec", "metrics"], "a heterogeneous target needs at least one metric");
    return {
      ...base,
      metrics,
      target: {
        kind: "heterogeneous",
        cost_expansion_rate_percent: target.costExpansionRatePercent ?? 200,
        params: heterogeneousParams(context, doc, target.params, at),
      },
    };
  }
  const target = spec.disaggregatedTarget!;
  const at = ["spec", "disaggregatedTarget"];
  const roles: z.input<typeof disaggregatedSchema>["roles"] = {};
  for (const [role, params] of Object.entries(target.roles)) {
    const roleAt = [...at, "roles", role];
    checkBounds(context, doc, roleAt, params, true);
    const fixed = params.minReplicas === params.maxReplicas && params.minReplicas > 0;
    const rolePending =
      params.metrics !== undefined ? policyMetrics(params.metrics, [...roleAt, "metrics"]) : pending;
    if (!fixed && rolePending.length === 0) {
      context.problems.add(
        doc,
        [...roleAt, "metrics"],
        `role "${role}" is not fixed (minReplicas != maxReplicas) and has no metrics (here or in spec.metrics)`,
      );
    }
    roles[role] = {
      min_replicas: params.minReplicas,
      max_replicas: params.maxReplicas,
      ...(fixed && params.metrics === undefined
        ? {}
        : {
            metrics: buildMetrics(
              context,
              doc,
              rolePending,
              sourcesOf(params.metricSources, [...roleAt, "metricSources"]),
            ),
          }),
    };
  }
  const constraint = target.ratioConstraint;
  let ratio: z.input<typeof disaggregatedSchema>["ratio"];
  if (constraint !== undefined) {
    const ratioAt = [...at, "ratioConstraint"];
    for (const key of ["numeratorRole", "denominatorRole"] as const) {
      if (!(constraint[key] in target.roles)) {
        const suggestion = closestName(constraint[key], Object.keys(target.roles));
        context.problems.add(
          doc,
          [...ratioAt, key],
          `role "${constraint[key]}" is not in roles${suggestion === undefined ? "" : `, did you mean ${suggestion}?`} (roles: ${Object.keys(target.roles).join(", ")})`,
        );
      }
    }
    if (constraint.numeratorRole === constraint.denominatorRole) {
      context.problems.add(
        doc,
        [...ratioAt, "denominatorRole"],
        "numeratorRole and denominatorRole must differ",
      );
    }
    const minRatio = parseQuantity(constraint.minRatio)!;
    const maxRatio = parseQuantity(constraint.maxRatio)!;
    if (minRatio < 0)
      context.problems.add(doc, [...ratioAt, "minRatio"], `minRatio must be >= 0, got ${minRatio}`);
    if (!(maxRatio > 0))
      context.problems.add(doc, [...ratioAt, "maxRatio"], `maxRatio must be > 0, got ${maxRatio}`);
    if (minRatio > maxRatio)
      context.problems.add(
        doc,
        [...ratioAt, "minRatio"],
        `minRatio (${minRatio}) must be <= maxRatio (${maxRatio})`,
      );
    ratio = {
      numerator_role: constraint.numeratorRole,
      denominator_role: constraint.denominatorRole,
      min_ratio: minRatio,
      max_ratio: maxRatio,
    };
  }
  return {
    ...base,
    // Every non-fixed role carries its own resolved metrics (sources are per role at HEAD).
    metrics: [],
    target: {
      kind: "disaggregated",
      pool: target.targetRef.name,
      roles,
      ...(ratio === undefined ? {} : { ratio }),
    },
  };
}

function homogeneousTarget(
  target: K8sTarget,
  bounds: { minReplicas: number; maxReplicas: number },
): z.input<typeof homogeneousSchema> {
  return {
    kind: "homogeneous",
    pool: targetName(target),
    ...(target.subTarget === undefined ? {} : { role: target.subTarget.name }),
    min_replicas: bounds.minReplicas,
    max_replicas: bounds.maxReplicas,
  };
}

function fromBinding(
  context: BuildContext,
  doc: LoadedDocument,
  binding: BindingDocument,
  policy: { doc: LoadedDocument; value: PolicyDocument } | undefined,
): KthenaConfigInput {
  const spec = binding.spec;
  const present = (
    ["scalingConfiguration", "optimizerConfiguration", "homogeneousTarget", "heterogeneousTarget"] as const
  ).filter((key) => spec[key] !== undefined);
  if (present.length !== 1) {
    context.problems.add(
      doc,
      present.length === 0 ? ["spec"] : ["spec", present[1]!],
      `expected exactly one of scalingConfiguration, optimizerConfiguration, homogeneousTarget, heterogeneousTarget` +
        (present.length === 0 ? "" : ` (found ${present.join(", ")})`),
    );
    context.problems.throwIfAny();
  }
  const policySpec = policy?.value.spec ?? {};
  const base = common(context, policy?.value, binding.metadata.name);
  // The binding's metricTargets (MatrixInfer docs) replace the policy's metrics when given.
  const fromPolicyMetrics = (): { pending: PendingMetric[]; doc: LoadedDocument } => ({
    pending: policyMetrics(policySpec.metrics, ["spec", "metrics"]),
    doc: policy?.doc ?? doc,
  });
  const noMetrics = (at: Path): void =>
    context.problems.add(
      doc,
      at,
      policy === undefined
        ? "no metrics: set metricTargets here or reference (policyRef) an AutoscalingPolicy with spec.metrics"
        : `no metrics: the binding sets no metricTargets and AutoscalingPolicy "${policy.value.metadata.name}" has no spec.metrics`,
    );
  const choose = (
    targets: Readonly<Record<string, number | string>> | undefined,
    at: Path,
  ): { pending: PendingMetric[]; doc: LoadedDocument } =>
    targets !== undefined
      ? { pending: metricTargets(targets, [...at, "metricTargets"]), doc }
      : fromPolicyMetrics();

  if (spec.scalingConfiguration !== undefined || spec.homogeneousTarget !== undefined) {
    const at =
      spec.scalingConfiguration !== undefined
        ? ["spec", "scalingConfiguration"]
        : ["spec", "homogeneousTarget"];
    const config = spec.scalingConfiguration ?? spec.homogeneousTarget!;
    checkBounds(context, doc, at, config);
    const chosen = choose(spec.scalingConfiguration?.metricTargets, at);
    if (chosen.pending.length === 0) noMetrics(at);
    const metrics = buildMetrics(
      context,
      chosen.doc,
      chosen.pending,
      sourcesOf(config.target.metricSources, [...at, "target", "metricSources"]),
    );
    return { ...base, metrics, target: homogeneousTarget(config.target, config) };
  }
  const at =
    spec.optimizerConfiguration !== undefined
      ? ["spec", "optimizerConfiguration"]
      : ["spec", "heterogeneousTarget"];
  const config = spec.optimizerConfiguration ?? spec.heterogeneousTarget!;
  const chosen = choose(spec.optimizerConfiguration?.metricTargets, at);
  if (chosen.pending.length === 0) noMetrics(at);
  const metrics = buildMetrics(
    context,
    chosen.doc,
    chosen.pending,
    heterogeneousSources(context, doc, config.params, [...at, "params"]),
  );
  return {
    ...base,
    metrics,
    target: {
      kind: "heterogeneous",
      cost_expansion_rate_percent: config.costExpansionRatePercent ?? 200,
      params: heterogeneousParams(context, doc, config.params, [...at, "params"]),
    },
  };
}

/** Tolerance, behavior, name and flags shared by every target kind. */
function common(context: BuildContext, policy: PolicyDocument | undefined, name: string): KthenaConfigInput {
  const spec = policy?.spec;
  return {
    name,
    upstream_compat: context.options.upstream_compat ?? false,
    tolerance_percent: spec?.tolerancePercent ?? 10,
    ...behaviorOf(spec?.behavior, context.regime),
  };
}

const seconds = (text: string | undefined): number | undefined =>
  text === undefined ? undefined : parseDuration(text);
/** Go compares the struct with its zero value: an empty mapping is an omitted block. */
const omitted = (block: object | undefined): block is undefined =>
  block === undefined || Object.keys(block).length === 0;

function stableOf(block: K8sStable): z.input<typeof scaleUpStableSchema> {
  return {
    instances: block.instances,
    percent: block.percent,
    period_s: seconds(block.period),
    select_policy: block.selectPolicy,
    stabilization_window_s: seconds(block.stabilizationWindow),
  };
}

function panicOf(block: K8sPanic): z.input<typeof panicSchema> {
  return {
    percent: block.percent,
    period_s: seconds(block.period),
    threshold_percent: block.panicThresholdPercent,
    hold_s: seconds(block.panicModeHold),
  };
}

/** Spec §4.2: the webhook injects omitted blocks whole; "crd" fills every block field by field. */
function behaviorOf(
  behavior: K8sBehavior | undefined,
  regime: "webhook" | "crd",
): { behavior?: z.input<typeof behaviorSchema> } {
  if (regime === "crd") {
    const up = behavior?.scaleUp;
    return {
      behavior: {
        scale_up: {
          stable: {
            ...stableOf(up?.stablePolicy ?? {}),
            stabilization_window_s: seconds(up?.stablePolicy?.stabilizationWindow) ?? 0,
          },
          panic: panicOf(up?.panicPolicy ?? {}),
        },
        scale_down: {
          ...stableOf(behavior?.scaleDown ?? {}),
          stabilization_window_s: seconds(behavior?.scaleDown?.stabilizationWindow) ?? 0,
        },
      },
    };
  }
  if (behavior === undefined || (omitted(behavior.scaleUp) && omitted(behavior.scaleDown))) return {};
  const up = behavior.scaleUp;
  return {
    behavior: {
      ...(omitted(up)
        ? {}
        : {
            scale_up: {
              ...(omitted(up.stablePolicy) ? {} : { stable: stableOf(up.stablePolicy) }),
              ...(omitted(up.panicPolicy) ? {} : { panic: panicOf(up.panicPolicy) }),
            },
          }),
      ...(omitted(behavior.scaleDown) ? {} : { scale_down: stableOf(behavior.scaleDown) }),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Error helpers

function pathOf(path: readonly PropertyKey[]): (string | number)[] {
  return path.map((key) => (typeof key === "number" ? key : String(key)));
}

/** `spec.metrics[0].name` */
function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path)
    out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`;
  return out === "" ? "(top level)" : out;
}

function joinPath(path: string, key: string): string {
  return path === "" || path === "(top level)" ? key : `${path}.${key}`;
}

function unknownFieldMessage(key: string, known: readonly string[] | undefined): string {
  const suggestion = known === undefined ? undefined : closestName(key, known);
  if (suggestion !== undefined) return `unknown field, did you mean ${suggestion}?`;
  return known === undefined ? "unknown field" : `unknown field (expected one of: ${known.join(", ")})`;
}

function cleanMessage(message: string): string {
  const missing = /^Invalid input: expected (\w+), received undefined$/.exec(message);
  if (missing !== null) return `missing required field (expected ${missing[1]})`;
  return message.replace(/^Invalid input: /, "");
}

/** The keys the object schema at `path` accepts (for "did you mean" hints). */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let current: z.ZodType | undefined = schema;
  for (const key of path) {
    current = current === undefined ? undefined : child(unwrap(current), key);
  }
  if (current === undefined) return undefined;
  const object = unwrap(current);
  if (object instanceof z.ZodObject) return Object.keys(object.shape);
  if (object instanceof z.ZodDiscriminatedUnion || object instanceof z.ZodUnion) {
    const keys = new Set<string>();
    for (const option of object.options as readonly z.ZodType[]) {
      const inner = unwrap(option);
      if (inner instanceof z.ZodObject) for (const key of Object.keys(inner.shape)) keys.add(key);
    }
    return [...keys];
  }
  return undefined;
}

function unwrap(schema: z.ZodType): z.ZodType {
  if (
    schema instanceof z.ZodOptional ||
    schema instanceof z.ZodNullable ||
    schema instanceof z.ZodDefault ||
    schema instanceof z.ZodPrefault
  ) {
    return unwrap(schema.unwrap() as z.ZodType);
  }
  if (schema instanceof z.ZodPipe) return unwrap(schema.in as z.ZodType);
  return schema;
}

function child(schema: z.ZodType, key: PropertyKey): z.ZodType | undefined {
  if (schema instanceof z.ZodObject) return (schema.shape as Record<string, z.ZodType>)[String(key)];
  if (schema instanceof z.ZodArray) return schema.element as z.ZodType;
  if (schema instanceof z.ZodRecord) return schema.valueType as z.ZodType;
  if (schema instanceof z.ZodDiscriminatedUnion || schema instanceof z.ZodUnion) {
    for (const option of schema.options as readonly z.ZodType[]) {
      const found = child(unwrap(option), key);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
