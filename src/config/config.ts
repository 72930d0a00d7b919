import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseDocument, LineCounter } from "yaml";
import { z } from "zod";
import { UsageError, closestName } from "../errors.ts";
import {
  clusterSchema,
  compatSchema,
  metricsSchema,
  performanceModelSchema,
  schedulerSchema,
  sloSchema,
  startStateSchema,
} from "./schema.ts";
import { applicationsSchema, autoscalingSchema } from "./autoscaling-schema.ts";
import { rlSchema } from "./rl-schema.ts";
import { workloadSchema } from "./workload-schema.ts";

export const simulationConfigSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  seed: z.int().nonnegative().default(0),
  model: z.string().default("bloom-176b"),
  cluster: clusterSchema.prefault({}),
  start_state: startStateSchema.prefault({ type: "baseline" }),
  scheduler: schedulerSchema.prefault({}),
  performance_model: performanceModelSchema.prefault({}),
  workload: workloadSchema,
  slo: sloSchema.prefault({}),
  metrics: metricsSchema.prefault({}),
  compat: compatSchema.prefault({}),
  /** Autoscaling: a ScalingManager driven by a policy. Absent = the start state's fleet stays fixed. */
  autoscaling: autoscalingSchema.optional(),
  /** The seeds' spelling of the scaling manager settings (folded into `autoscaling`). */
  applications: applicationsSchema.optional(),
  /** Stop the simulation at this time; unfinished requests are reported, not dropped. */
  end_time_s: z.number().positive().optional(),
  /** Poll interval of a KV shipment that waits for memory at its destination (upstream 1 s). */
  kv_retry_delay_s: z.number().positive().default(1),
  /** RL training settings for `splitscale train` (environment, reward, PPO); ignored by `simulate`. */
  rl: rlSchema.optional(),
});

export type SimulationConfig = z.infer<typeof simulationConfigSchema>;

/** A config plus where it came from, so relative paths and messages can name the file. */
export interface LoadedConfig {
  readonly config: SimulationConfig;
  /** Directory that relative paths in the config resolve against. */
  readonly baseDir: string;
  readonly source: string;
}

const TOP_LEVEL_KEYS = Object.keys(simulationConfigSchema.shape);

/**
 * Validates a parsed object; errors name the source, the key path, the line when known and a
 * suggestion. A key set by a `--set KEY=VALUE` (or sweep `--vary`) override in `overrides` is blamed on that override,
 * not on the file.
 */
export function validateConfig(
  raw: unknown,
  source: string,
  locate?: (path: PropertyKey[]) => string,
  overrides: readonly Override[] = [],
): SimulationConfig {
  const result = simulationConfigSchema.safeParse(withImplicitDefaults(raw ?? {}));
  if (result.success) return foldApplications(result.data);
  const lines = result.error.issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    const override = overrideFor(issue, overrides);
    const where =
      override === undefined ? `${source}${locate?.(issue.path) ?? ""}` : `${override.flag} ${override.text}`;
    let message = issue.message;
    if (issue.code === "unrecognized_keys") {
      const hints = issue.keys.map((key) => {
        const parentShape = shapeAt(issue.path);
        const suggestion = parentShape === undefined ? undefined : closestName(key, parentShape);
        return suggestion === undefined ? `"${key}"` : `"${key}" (did you mean "${suggestion}"?)`;
      });
      message = `unknown key ${hints.join(", ")}`;
    }
    return `${where}: ${path === "" ? "(top level)" : path}: ${message}`;
  });
  throw new UsageError(`invalid config\n  ${lines.join("\n  ")}`);
}

/**
 * Defaults that depend on other keys, filled in before validation: the start state's type, and the
 * scheduler when none is named: mixed_pool (the Splitwise paper's) for a splitwise start state,
 * token_jsq for co-located fleets, where a KV-shipping scheduler cannot run (so an empty config runs).
 */
function withImplicitDefaults(raw: unknown): unknown {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return raw;
  let config = raw as Record<string, unknown>;
  // `start_state` defaults to `{type: baseline}`; a block that only sets `instance` (as
  // `--set start_state.instance.max_batch_size=256` on an empty config makes) keeps that default type.
  const state = config.start_state;
  if (state !== null && typeof state === "object" && !Array.isArray(state) && !("type" in state))
    config = { ...config, start_state: { ...state, type: "baseline" } };
  const scheduler = config.scheduler ?? {};
  if (scheduler === null || typeof scheduler !== "object" || "name" in scheduler) return config;
  const startState = config.start_state as { type?: unknown } | undefined;
  const name = startState?.type === "splitwise" ? "mixed_pool" : "token_jsq";
  return { ...config, scheduler: { ...scheduler, name } };
}

/** A `key=value` override and the flag that gave it (`--set`, or sweep's `--vary`). */
export interface Override {
  readonly flag: string;
  readonly text: string;
}

/** The last `--set` override whose key is the issue's key, a key above it or (for unknown keys) below it. */
function overrideFor(issue: z.core.$ZodIssue, overrides: readonly Override[]): Override | undefined {
  const issuePath = issue.path.map(String);
  const keys =
    issue.code === "unrecognized_keys" ? issue.keys.map((key) => [...issuePath, key]) : [issuePath];
  for (let i = overrides.length - 1; i >= 0; i--) {
    const override = overrides[i]!;
    const equals = override.text.indexOf("=");
    if (equals <= 0) continue;
    const setPath = override.text.slice(0, equals).split(".");
    const covers = (key: readonly string[]): boolean =>
      setPath.every((part, index) => index >= key.length || key[index] === part);
    if (keys.some(covers)) return override;
  }
  return undefined;
}

/** The DRL fork's startup delay when `scaling_manager` has no `scale_up_delay` (its initialize.py). */
const FORK_DEFAULT_SCALE_UP_DELAY_S = 1;

/**
 * Seeds 000/001 configure the manager as `applications[0].scaling_manager.{scale_up_delay,
 * drain_check_interval}`; that turns autoscaling on (default policy) with those settings. Without
 * `scale_up_delay` the fork's 1 s applies, unless an `autoscaling:` block sets the delay itself.
 */
function foldApplications(config: SimulationConfig): SimulationConfig {
  const manager = config.applications?.[0]?.scaling_manager;
  if (manager === undefined) return config;
  const autoscaling = config.autoscaling ?? autoscalingSchema.parse({});
  const startupDelay =
    manager.scale_up_delay ??
    (config.autoscaling === undefined ? FORK_DEFAULT_SCALE_UP_DELAY_S : autoscaling.startup_delay_s);
  return {
    ...config,
    autoscaling: {
      ...autoscaling,
      startup_delay_s: startupDelay,
      ...(manager.drain_check_interval === undefined
        ? {}
        : { drain_check_interval_s: manager.drain_check_interval }),
    },
  };
}

/** Known keys of the object at `path` (for "did you mean" suggestions). */
function shapeAt(path: readonly PropertyKey[]): string[] | undefined {
  if (path.length === 0) return TOP_LEVEL_KEYS;
  const first = String(path[0]);
  const known: Record<string, string[]> = {
    cluster: Object.keys(clusterSchema.shape),
    scheduler: Object.keys(schedulerSchema.shape),
    performance_model: Object.keys(performanceModelSchema.shape),
    slo: Object.keys(sloSchema.shape),
    metrics: Object.keys(metricsSchema.shape),
    compat: Object.keys(compatSchema.shape),
    autoscaling: Object.keys(autoscalingSchema.shape),
    rl: Object.keys(rlSchema.shape),
    start_state: ["type", "split", "prompt", "token", "instance"],
  };
  if (path.length === 1) return known[first];
  if (first === "start_state") {
    return [
      "batching",
      "max_batch_size",
      "max_batch_tokens",
      "max_preemptions",
      "tensor_parallelism",
      "pipeline_parallelism",
      "num_instances",
      "skus",
    ];
  }
  return undefined;
}

/** Reads and validates a YAML config file. */
export function loadConfigFile(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read config ${path}: ${(error as Error).message}`);
  }
  return parseConfigText(text, path, dirname(resolve(path)));
}

/** A YAML file's value and a way to find the line of a key path in it (`:LINE`, or "" when absent). */
export interface YamlSource {
  readonly value: unknown;
  readonly locate: (path: PropertyKey[]) => string;
}

/** Parses YAML text; a syntax error names the source, line and column. */
export function parseYamlSource(text: string, source: string): YamlSource {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    const error = document.errors[0]!;
    const position = lineCounter.linePos(error.pos[0]);
    throw new UsageError(
      `${source}:${position.line}:${position.col}: YAML syntax error: ${error.message.split("\n")[0]}`,
    );
  }
  const locate = (path: PropertyKey[]): string => {
    for (let depth = path.length; depth > 0; depth--) {
      const node = document.getIn(path.slice(0, depth).map(String), true) as
        { range?: [number, number, number] } | undefined;
      if (node?.range !== undefined) return `:${lineCounter.linePos(node.range[0]).line}`;
    }
    return "";
  };
  return { value: document.toJS(), locate };
}

export function parseConfigText(text: string, source: string, baseDir: string): LoadedConfig {
  const { value, locate } = parseYamlSource(text, source);
  const config = validateConfig(value, source, locate);
  return { config, baseDir, source };
}

/** Applies `--set a.b.c=value` overrides (value parsed as YAML: numbers, booleans, lists). */
export function applyOverrides(
  raw: Record<string, unknown>,
  overrides: readonly string[],
): Record<string, unknown> {
  for (const override of overrides) {
    const equals = override.indexOf("=");
    if (equals <= 0) throw new UsageError(`--set expects key=value, got "${override}"`);
    const keyPath = override.slice(0, equals).split(".");
    const valueText = override.slice(equals + 1);
    const document = parseDocument(valueText);
    if (document.errors.length > 0) {
      throw new UsageError(
        `--set ${override}: the value is not valid YAML: ${document.errors[0]!.message.split("\n")[0]}`,
      );
    }
    const value: unknown = document.toJS();
    let target: Record<string, unknown> = raw;
    keyPath.forEach((key, index) => {
      if (index === keyPath.length - 1) {
        target[key] = value;
        return;
      }
      const next = target[key];
      if (next === undefined || next === null || typeof next !== "object") target[key] = {};
      target = target[key] as Record<string, unknown>;
    });
  }
  return raw;
}

/** Raw (unvalidated) YAML object from a file, for layering overrides before validation. */
export function readRawConfig(path: string): Record<string, unknown> {
  return readConfigSource(path).raw;
}

/** A config file's raw (unvalidated) mapping and where its keys are, for errors naming lines. */
export function readConfigSource(path: string): {
  raw: Record<string, unknown>;
  locate: (path: PropertyKey[]) => string;
} {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read config ${path}: ${(error as Error).message}`);
  }
  const { value, locate } = parseYamlSource(text, path);
  if (value === null || value === undefined) return { raw: {}, locate };
  if (typeof value !== "object" || Array.isArray(value))
    throw new UsageError(
      `${path}: expected a mapping of config keys at the top level, got ${describeYaml(value)}`,
    );
  return { raw: value as Record<string, unknown>, locate };
}

function describeYaml(value: unknown): string {
  return Array.isArray(value) ? "a list" : `the ${typeof value} ${JSON.stringify(value)}`;
}
