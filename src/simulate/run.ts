import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, sep } from "node:path";
import { stringify } from "yaml";
import { Rng } from "../core/rng.ts";
import type { LoadedConfig, SimulationConfig } from "../config/config.ts";
import { RequestMetricsCollector } from "../metrics/collector.ts";
import { buildTimeline, IntervalCounter, timelineCsv, type TimelineRow } from "../metrics/timeline.ts";
import {
  buildRunSummary,
  csvField,
  summaryToCsvRow,
  summaryToJson,
  type RunSummary,
} from "../metrics/summary.ts";
import type { SloSpec } from "../metrics/slo.ts";
import type { RequestRecord, UnloadedLatency } from "../metrics/types.ts";
import { RequestsCsvWriter } from "../metrics/writers.ts";
import { loadCatalog, lookup } from "../model/catalog.ts";
import type { Instance } from "../serving/instance.ts";
import type { SimRequest } from "../serving/request.ts";
import type { RequestScheduler } from "../serving/schedulers/scheduler.ts";
import type { RequestSource } from "../workload/types.ts";
import type { Policy } from "../policy/types.ts";
import type { ScalingSummary } from "../metrics/summary.ts";
import { ConfigError } from "../errors.ts";
import { withAbsolutePaths } from "../config/resolved-config.ts";
import { PACKAGE_ROOT } from "../paths.ts";
import { attachAutoscaling, policyContextFor, type AttachedAutoscaling } from "./autoscaling-setup.ts";
import { buildPolicy } from "./policy-setup.ts";
import { buildSetup } from "./setup.ts";
import { lateFirstArrivalNote } from "./run-notes.ts";
import { Simulation, type SimulationOutcome } from "./simulation.ts";
import { openConfiguredWorkload } from "./workload.ts";

export interface RunProgress {
  readonly sim_time_s: number;
  readonly arrived: number;
  readonly completed: number;
  readonly events: number;
}

export interface RunOptions {
  /** Write summary.json, summary.csv, instances.csv and the resolved config here. */
  readonly outDir?: string;
  /** Also stream one row per request to requests.csv. */
  readonly writeRequests?: boolean;
  /** Called every `progressEvery` events. */
  readonly onProgress?: (progress: RunProgress) => void;
  readonly progressEvery?: number;
  /** Overrides the configured workload (used by tests and tools). */
  readonly source?: RequestSource;
  /** Receives every completed request record (e.g. for upstream-format outputs). */
  readonly onRecord?: (record: RequestRecord) => void;
  /** Told things about the run worth a user's attention before it goes on (e.g. a first arrival years away). */
  readonly onNote?: (note: string) => void;
  /** Sees each request as it completes; the object is reused for a later arrival after the call. */
  readonly onRequestCompleted?: (request: SimRequest, now: number) => void;
  /** Runs this policy instead of the one the config names (autoscaling must be configured). */
  readonly policy?: Policy;
  /** Sees the run's scheduler before the first request (for tools and invariant checks in tests). */
  readonly onSchedulerCreated?: (scheduler: RequestScheduler) => void;
  /** Sees the ScalingManager and controller of an autoscaled run before the first event. */
  readonly onAutoscalingAttached?: (autoscaling: AttachedAutoscaling) => void;
}

export interface RunResult {
  readonly summary: RunSummary;
  readonly outcome: SimulationOutcome;
  /** The manager, controller and pools of an autoscaled run (undefined for a fixed fleet). */
  readonly autoscaling?: AttachedAutoscaling;
  /** The run over time (timeline.csv); computed when the run writes its outputs (`outDir`). */
  readonly timeline?: readonly TimelineRow[];
  readonly files: readonly string[];
}

/**
 * Outputs a run writes only sometimes (with --requests, charts, autoscaling or --splitwise-config).
 * A rerun into the same directory removes them first, so what is there afterwards is one run's.
 */
const OPTIONAL_OUTPUTS = [
  "requests.csv",
  "timeline.svg",
  "timeline.png",
  "replicas.csv",
  "decisions.csv",
  "scaling_events.csv",
  join("upstream", "summary.csv"),
  join("upstream", "detailed", "0.csv"),
  join("upstream", "detailed", "0_alloc.csv"),
  join("upstream", "request_nodes.csv"),
];

function removeStaleOutputs(outDir: string): void {
  for (const file of OPTIONAL_OUTPUTS) rmSync(join(outDir, file), { force: true });
}

/**
 * Stable hash of the resolved config, recorded in every summary so results trace back to inputs. It
 * is taken over the config as `config.resolved.yaml` records it (file paths absolute), so rerunning
 * that file gives the same hash as the run that wrote it; paths inside the package are written
 * relative to it, so a preset hashes the same wherever splitscale is installed.
 */
export function configHash(loaded: LoadedConfig): string {
  const resolved = withAbsolutePaths(loaded.config, loaded.baseDir, loaded.source);
  const packagePrefix = PACKAGE_ROOT + sep;
  const portable = JSON.stringify(resolved, (_key, value: unknown) =>
    typeof value === "string" && value.startsWith(packagePrefix)
      ? `<splitscale>/${value.slice(packagePrefix.length).split(sep).join("/")}`
      : value,
  );
  return createHash("sha256").update(portable).digest("hex").slice(0, 16);
}

/** The per-request SLO of a config (also what the RL environment rewards against). */
export function sloSpecOf(loaded: LoadedConfig): SloSpec {
  const slo = loaded.config.slo;
  return {
    ttft_slowdown: slo.ttft_slowdown,
    tbt_slowdown: slo.tbt_slowdown,
    e2e_slowdown: slo.e2e_slowdown,
    ...(slo.ttft_s === undefined ? {} : { ttft_s: slo.ttft_s }),
    ...(slo.tbt_s === undefined ? {} : { tbt_s: slo.tbt_s }),
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Rows the metrics collector allocates up front for a workload of known size (about 1.1 GB of
 * address space at most); beyond this it grows as it goes.
 */
const MAX_PREALLOCATED_ROWS = 1 << 24;

function blankRecord(): Mutable<RequestRecord> {
  return {
    id: 0,
    arrival_s: 0,
    prompt_tokens: 0,
    output_tokens: 0,
    queue_s: 0,
    ttft_s: 0,
    e2e_s: 0,
    tbt_s: 0,
    nth_token_overhead_s: 0,
    preemptions: 0,
  };
}

/** Runs one simulation from a validated config; a run is a function of (config, seed). */
export function runSimulation(loaded: LoadedConfig, options: RunOptions = {}): RunResult {
  const { config, baseDir } = loaded;
  const rng = new Rng(config.seed);
  const schedulerRng = rng.fork("scheduler");
  const setup = buildSetup(config, baseDir, () => schedulerRng.nextFloat());
  options.onSchedulerCreated?.(setup.scheduler);
  const source = options.source ?? openConfiguredWorkload(config, baseDir);

  // Slowdowns are measured against the run's own hardware unless a reference is configured. Looked
  // up once the cluster exists, so a fleet that cannot run is refused with its own reason first.
  // Called only once requests complete, after `unloadedModel` below is set. Cached per prompt
  // length: every completion asks, and prompt lengths repeat.
  const unloadedByPrompt = new Map<number, UnloadedLatency>();
  const unloaded = (promptTokens: number): UnloadedLatency => {
    let latency = unloadedByPrompt.get(promptTokens);
    if (latency === undefined) {
      latency = unloadedModel.unloaded(promptTokens);
      unloadedByPrompt.set(promptTokens, latency);
    }
    return latency;
  };

  const files: string[] = [];
  if (options.outDir !== undefined) {
    mkdirSync(options.outDir, { recursive: true });
    removeStaleOutputs(options.outDir);
  }
  const requestsWriter =
    options.outDir !== undefined && options.writeRequests === true
      ? new RequestsCsvWriter(join(options.outDir, "requests.csv"))
      : undefined;
  const collector = new RequestMetricsCollector(unloaded, {
    warmup_s: config.metrics.warmup_s,
    // Sized once when the workload says how many requests it has (untouched rows cost no memory).
    ...(source.maxRequests === undefined
      ? {}
      : { initial_capacity: Math.min(source.maxRequests, MAX_PREALLOCATED_ROWS) }),
    ...(requestsWriter === undefined ? {} : { sink: requestsWriter }),
  });
  const warmup = config.metrics.warmup_s;
  const arrivalsPerInterval = new IntervalCounter(config.metrics.timeline_interval_s);
  const divideByAllTokens = config.compat.tbt_divides_by_all_tokens;
  const onRecord = options.onRecord;
  const onRequestCompleted = options.onRequestCompleted;
  // The collector and the CSV writer only read a record while it is passed to them, so one mutable
  // record serves every completion unless an onRecord listener might keep them.
  const scratchRecord = onRecord === undefined ? blankRecord() : undefined;

  const started = performance.now();
  const simulation = new Simulation(setup, source, {
    requestArrived: (request: SimRequest) => {
      collector.noteArrival(request.arrivalTime);
      if (request.arrivalTime >= warmup) arrivalsPerInterval.add(request.arrivalTime);
    },
    requestCompleted: (request: SimRequest, now: number) => {
      const ttft = request.firstTokenTime - request.arrivalTime;
      const e2e = now - request.arrivalTime;
      const divisor = divideByAllTokens ? request.outputTokens : request.outputTokens - 1;
      const record = scratchRecord ?? blankRecord();
      record.id = request.id;
      record.arrival_s = request.arrivalTime;
      record.prompt_tokens = request.promptTokens;
      record.output_tokens = request.outputTokens;
      record.queue_s = request.promptStartTime - request.arrivalTime;
      record.ttft_s = ttft;
      record.e2e_s = e2e;
      record.tbt_s = divisor > 0 ? (e2e - ttft) / divisor : 0;
      record.nth_token_overhead_s = request.token.startTime - request.prompt.completionTime;
      record.preemptions = request.preemptions;
      collector.record(record);
      onRecord?.(record);
      onRequestCompleted?.(request, now);
    },
  });
  const lateStart = lateFirstArrivalNote(simulation.nextArrivalTime);
  if (lateStart !== undefined) options.onNote?.(lateStart);
  const reference = config.metrics.slo_reference ?? defaultSloReference(loaded);
  const unloadedModel = setup.perf.forInstance(
    reference.model,
    reference.hardware,
    reference.tensor_parallelism,
  );
  let autoscaling: AttachedAutoscaling | undefined;
  if (config.autoscaling !== undefined) {
    const context = policyContextFor(
      config,
      config.autoscaling,
      setup.catalog,
      setup.model,
      setup.perf,
      loaded.source,
    );
    const policy = options.policy ?? buildPolicy(loaded, config.autoscaling, context);
    autoscaling = attachAutoscaling(simulation, config, config.autoscaling, policy);
    options.onAutoscalingAttached?.(autoscaling);
  } else if (options.policy !== undefined) {
    throw new ConfigError("a policy was given but the config has no autoscaling section");
  } else if (simulation.cluster.instances.length === 0) {
    // Nothing would ever serve a request: every arrival would wait until the stall timeout.
    const servers = config.cluster.servers.reduce((sum, group) => sum + group.count, 0);
    const why =
      servers === 0
        ? "cluster.servers has 0 servers"
        : `start_state.type ${config.start_state.type} places none`;
    throw new ConfigError(`the fleet has no instances (${why}) and no autoscaling section to add them`);
  } else {
    refuseMissingPool(config, simulation.cluster.instances);
  }
  const progressEvery = options.progressEvery ?? 200_000;
  if (options.onProgress === undefined) {
    simulation.run();
  } else {
    const report = (): void =>
      options.onProgress!({
        sim_time_s: simulation.clock.now,
        arrived: simulation.arrived,
        completed: simulation.completed,
        events: simulation.clock.eventsProcessed,
      });
    while (simulation.runSome(progressEvery)) report();
    report();
  }
  const wall_s = (performance.now() - started) / 1000;
  const outcome = simulation.outcome();
  requestsWriter?.close();

  const utilization =
    outcome.instances.length === 0
      ? 0
      : outcome.instances.reduce((sum, i) => sum + i.utilization, 0) / outcome.instances.length;
  const summary = buildRunSummary({
    collector,
    slo: sloSpecOf(loaded),
    sim_end_s: outcome.endTime_s,
    gpu_hours: outcome.gpuSeconds / 3600,
    cost_usd: outcome.costUsd,
    energy_kwh: outcome.energyKwh,
    instance_utilization: utilization,
    scaling: scalingSummary(outcome, autoscaling),
    rejected: outcome.rejected,
    events: outcome.events,
    wall_s,
    seed: config.seed,
    config_hash: configHash(loaded),
    extra: {
      instances: outcome.instances.length,
      kv_transfer_retries: outcome.kvRetries,
      waiting_at_end: outcome.waitingAtEnd,
      stalled: outcome.stalled,
      memory_stalls: outcome.instances.reduce((sum, i) => sum + i.memory_stalls, 0),
    },
  });

  let timeline: TimelineRow[] | undefined;
  if (options.outDir !== undefined) {
    const out = options.outDir;
    timeline = buildTimeline({
      interval_s: config.metrics.timeline_interval_s,
      warmup_s: warmup,
      end_s: outcome.endTime_s,
      arrivals: arrivalsPerInterval,
      columns: collector.columns(),
      slo: sloSpecOf(loaded),
      instances: outcome.instances.map((i) => ({
        start_s: i.created_s,
        end_s: i.removed_s ?? outcome.endTime_s,
        weight: 1,
      })),
      servers: outcome.servers.map((server) => ({
        start_s: server.created_s,
        end_s: server.removed_s ?? outcome.endTime_s,
        weight: server.gpus,
      })),
    });
    writeFileSync(join(out, "timeline.csv"), timelineCsv(timeline));
    writeFileSync(join(out, "summary.json"), summaryToJson(summary));
    const csv = summaryToCsvRow(summary);
    writeFileSync(join(out, "summary.csv"), `${csv.header}\n${csv.row}\n`);
    writeFileSync(join(out, "instances.csv"), instancesCsv(outcome));
    writeFileSync(
      join(out, "config.resolved.yaml"),
      stringify(withAbsolutePaths(config, baseDir, loaded.source)),
    );
    files.push("summary.json", "summary.csv", "timeline.csv", "instances.csv", "config.resolved.yaml");
    if (autoscaling !== undefined) {
      writeFileSync(join(out, "replicas.csv"), replicasCsv(autoscaling));
      writeFileSync(join(out, "decisions.csv"), decisionsCsv(autoscaling));
      writeFileSync(join(out, "scaling_events.csv"), scalingEventsCsv(autoscaling));
      files.push("replicas.csv", "decisions.csv", "scaling_events.csv");
    }
    if (requestsWriter !== undefined) files.push("requests.csv");
  }
  return {
    summary,
    outcome,
    ...(autoscaling === undefined ? {} : { autoscaling }),
    ...(timeline === undefined ? {} : { timeline }),
    files: files.map((file) => (options.outDir === undefined ? file : join(options.outDir, file))),
  };
}

/** The reference instance slowdowns are measured against when `metrics.slo_reference` is unset. */
export function defaultSloReference(loaded: LoadedConfig): {
  model: string;
  hardware: string;
  tensor_parallelism: number;
} {
  const { config } = loaded;
  const state = config.start_state;

  const catalog = loadCatalog();
  let sku = config.cluster.servers[0]?.sku ?? "dgx-h100";
  let tp = 8;
  if (state.type === "splitwise") {
    sku = state.prompt.skus[0] !== undefined && state.split === "heterogeneous" ? state.prompt.skus[0] : sku;
    tp = state.prompt.tensor_parallelism;
  } else if (state.type === "baseline" || state.type === "orca") {
    tp = state.instance.tensor_parallelism;
  }
  const processor = lookup(catalog.skus, "sku", sku, "cluster.servers[0].sku").processor;
  return { model: config.model, hardware: processor, tensor_parallelism: tp };
}

function scalingSummary(
  outcome: SimulationOutcome,
  autoscaling: AttachedAutoscaling | undefined,
): ScalingSummary {
  if (autoscaling === undefined) {
    const active = outcome.instances.reduce((sum, instance) => sum + instance.gpus * instance.lifetime_s, 0);
    const count = outcome.instances.length;
    return {
      policy: null,
      events: 0,
      decisions: 0,
      max_replicas: count,
      final_replicas: count,
      gpu_seconds_by_state: withUnassigned({ starting: 0, active, draining: 0 }, outcome.gpuSeconds),
    };
  }
  const { manager, controller } = autoscaling;
  const byTime = new Map<number, number>();
  for (const sample of controller.samples)
    byTime.set(sample.time_s, (byTime.get(sample.time_s) ?? 0) + sample.desired);
  const status = manager.statusSummary();
  const final = status.active_instances + status.scaling_up_instances;
  const counted = new Set(["scale_up", "drain", "abort_drain", "cancel_scale_up"]);
  return {
    policy: autoscaling.policyName,
    events: manager.events.filter((event) => counted.has(event.action)).length,
    decisions: controller.decisions.length,
    max_replicas: Math.max(final, autoscaling.initialReplicas, ...byTime.values()),
    final_replicas: final,
    gpu_seconds_by_state: withUnassigned(manager.gpuSecondsByState(), outcome.gpuSeconds),
  };
}

/**
 * Instance GPU-seconds by state plus the billed GPU-seconds no instance ran on (servers without an
 * instance, or GPUs beyond an instance's tensor parallelism), so the four add up to GPU-hours.
 */
function withUnassigned(
  byState: { starting: number; active: number; draining: number },
  billedGpuSeconds: number,
): ScalingSummary["gpu_seconds_by_state"] {
  const held = byState.starting + byState.active + byState.draining;
  // Floating-point sums of the same seconds in two orders can differ in the last bits.
  const unassigned = billedGpuSeconds - held;
  return { ...byState, unassigned: Math.abs(unassigned) < 1e-6 * billedGpuSeconds ? 0 : unassigned };
}

function csvText(header: string, rows: readonly string[]): string {
  return `${header}\n${rows.map((row) => `${row}\n`).join("")}`;
}

function replicasCsv(autoscaling: AttachedAutoscaling): string {
  return csvText(
    "time_s,pool,starting,active,draining,desired,arrival_rate,queued",
    autoscaling.controller.samples.map((s) =>
      [s.time_s, s.pool, s.starting, s.active, s.draining, s.desired, s.arrival_rate, s.queued].join(","),
    ),
  );
}

function decisionsCsv(autoscaling: AttachedAutoscaling): string {
  return csvText(
    "time_s,pool,from,to,reason",
    autoscaling.controller.decisions.map((d) =>
      [d.time_s, d.pool, d.from, d.to, csvField(d.reason)].join(","),
    ),
  );
}

function scalingEventsCsv(autoscaling: AttachedAutoscaling): string {
  return csvText(
    "time_s,action,pool,instance,detail",
    autoscaling.manager.events.map((e) =>
      [e.time_s, e.action, e.pool, e.instance, csvField(e.detail)].join(","),
    ),
  );
}

function instancesCsv(outcome: SimulationOutcome): string {
  const header =
    "id,label,tag,sku,gpus,created_s,removed_s,lifetime_s,busy_s,prefill_s,decode_s,utilization,peak_memory_fraction,preemptions,memory_stalls";
  const rows = outcome.instances.map((i) =>
    [
      i.id,
      i.label,
      i.tag ?? "",
      i.sku,
      i.gpus,
      i.created_s,
      i.removed_s ?? "",
      i.lifetime_s,
      i.busy_s,
      i.prefill_s,
      i.decode_s,
      i.utilization,
      i.peak_memory_fraction,
      i.preemptions,
      i.memory_stalls,
    ].join(","),
  );
  return `${header}\n${rows.join("\n")}\n`;
}

/**
 * A fixed fleet whose scheduler needs both a prompt and a token instance but lacks one of them would
 * hold every request forever: the kv_* schedulers never co-locate, and mixed_pool co-locates only
 * when it may borrow (`on_saturation: borrow`).
 */
function refuseMissingPool(config: SimulationConfig, instances: readonly Instance[]): void {
  const name = config.scheduler.name;
  const needsBoth =
    name.startsWith("kv_") ||
    name.startsWith("overlap_kv_") ||
    (name === "mixed_pool" && config.scheduler.on_saturation !== "borrow");
  if (!needsBoth) return;
  const prompt = instances.filter((instance) => instance.tag === "prompt").length;
  const token = instances.filter((instance) => instance.tag === "token").length;
  if (prompt > 0 && token > 0) return;
  throw new ConfigError(
    `scheduler.name: ${name} needs prompt and token instances, but start_state gives ${prompt} prompt and ${token} token instances and there is no autoscaling to add them`,
  );
}
