/**
 * `splitscale serve`: wires a serve config into a running gateway + control loop + actuator.
 *
 *   clients ──► gateway (queue, routing, deadlines) ──► workers (engines)
 *                   ▲                                      │ /metrics
 *   actuator ◄── controller: scrape → Observation → policy.decide ◄─┘
 *
 * One HTTP listener serves the OpenAI endpoints, the admin API (/admin/*), the gateway's own
 * Prometheus page (/metrics) and /health.
 */
import { resolve } from "node:path";
import "../policy/builtin.ts";
import type { LoadedServeConfig, ServeConfig } from "../config/serve-schema.ts";
import { UsageError } from "../errors.ts";
import { loadPolicyFile } from "../policy/policy-file.ts";
import { findPolicy, type PolicyContext } from "../policy/registry.ts";
import { GAUGES, type Policy, type PoolCapacity } from "../policy/types.ts";
import { ProcessActuator } from "./actuators/process.ts";
import { DEFAULT_COLLECTOR_OPTIONS, MetricsCollector } from "./collector.ts";
import {
  Controller,
  LiveClock,
  type Actuator,
  type PoolPlan,
  type StateStore,
  type UnitSpec,
} from "./controller.ts";
import { resolveHardware, type Hardware } from "./engine/hardware.ts";
import { installAdminRoutes } from "./gateway/admin.ts";
import { Gateway } from "./gateway/gateway.ts";
import { GatewayMetrics } from "./gateway/metrics.ts";
import { baseUrlOf, createHttpApp } from "./http.ts";
import { createLogger, type Logger } from "./log.ts";
import { WorkerRegistry } from "./workers.ts";

export interface ServeHandle {
  readonly url: string;
  readonly config: ServeConfig;
  readonly registry: WorkerRegistry;
  readonly gateway: Gateway;
  readonly collector: MetricsCollector;
  readonly controller: Controller | undefined;
  readonly actuator: Actuator;
  readonly hardware: Hardware;
  close(): Promise<void>;
}

export interface ServeOverrides {
  readonly log?: Logger;
  readonly host?: string;
  readonly port?: number;
}

/** What the Kubernetes actuator offers serve beyond the Actuator interface (bindings are pools). */
export interface DynamicPools {
  pools(): ReadonlyMap<string, PoolPlan>;
  units(): readonly UnitSpec[];
  stateStore(): StateStore;
}

/** Capacity facts of a pool, as planning policies read them. */
export function poolCapacityFor(
  config: ServeConfig,
  hardware: Hardware,
  pool: { startup_delay_s: number; cost_per_hour_usd?: number | undefined },
): PoolCapacity {
  const engine =
    config.actuator.type === "process" && config.actuator.command === undefined
      ? config.actuator.engine
      : undefined;
  return {
    sku: hardware.processor,
    gpusPerReplica: hardware.tensorParallelism,
    costPerReplicaHour_usd: pool.cost_per_hour_usd ?? hardware.costPerHour_usd,
    startupDelay_s: pool.startup_delay_s,
    maxBatchSize: engine?.max_batch_size ?? 512,
    maxBatchTokens: engine?.max_batch_tokens ?? 2048,
    maxKvTokens: hardware.maxKvTokens,
  };
}

/** The config's policy from the shared registry (or its policy_file), for the given pools. */
export function buildConfiguredPolicy(loaded: LoadedServeConfig, context: PolicyContext): Policy {
  const autoscaling = loaded.config.autoscaling;
  if (autoscaling.policy_file !== undefined)
    return loadPolicyFile(resolve(loaded.baseDir, autoscaling.policy_file), context);
  const entry = findPolicy(autoscaling.policy, `${loaded.source}: autoscaling.policy`);
  return entry.create(autoscaling.policy_config, context);
}

export async function startServe(
  loaded: LoadedServeConfig,
  overrides: ServeOverrides = {},
): Promise<ServeHandle> {
  const { config, source, baseDir } = loaded;
  const log = overrides.log ?? createLogger("serve", config.log_level);
  const served = config.served_model_name ?? config.model;
  const hardware = resolveHardware(
    {
      model: config.model,
      gpu: config.gpu,
      tp: config.tensor_parallelism,
      perfModel: config.performance_model ?? "auto",
      baseDir,
    },
    `${source}:`,
  );
  const autoscaling = config.autoscaling;
  const clock = new LiveClock(autoscaling.time_scale);
  const registry = new WorkerRegistry();
  const collector = new MetricsCollector(
    {
      ...DEFAULT_COLLECTOR_OPTIONS,
      timeout_s: autoscaling.scrape_timeout_s,
      staleness_s: autoscaling.metrics_staleness_s,
    },
    log,
  );

  let actuator: Actuator;
  let pools: () => ReadonlyMap<string, PoolPlan>;
  let units: () => readonly UnitSpec[];
  let stateStore: StateStore | undefined;
  let logTail: ((id: string) => readonly string[]) | undefined;
  if (config.actuator.type === "process") {
    const plans = new Map<string, PoolPlan>();
    for (const [name, pool] of Object.entries(config.pools)) {
      plans.set(name, {
        name,
        role: pool.role,
        min: pool.min,
        max: pool.max,
        capacity: poolCapacityFor(config, hardware, pool),
      });
    }
    if (plans.size === 0) throw new UsageError(`${source}: pools: at least one pool is needed`);
    const context: PolicyContext = {
      source,
      pools: [...plans.values()].map((plan) => ({
        name: plan.name,
        role: plan.role,
        capacity: plan.capacity,
        latency: hardware.perf,
      })),
    };
    // Build once now so a bad policy config fails at start-up with a clear message.
    const first = autoscaling.enabled ? buildConfiguredPolicy(loaded, context) : undefined;
    let built = first;
    const unitList: UnitSpec[] =
      first === undefined
        ? []
        : [
            {
              name: "default",
              fingerprint: `${autoscaling.policy_file ?? autoscaling.policy}`,
              pools: [...plans.keys()],
              build: () => {
                const policy = built ?? buildConfiguredPolicy(loaded, context);
                built = undefined;
                return policy;
              },
            },
          ];
    const processActuator = new ProcessActuator({
      config: config.actuator,
      pools: Object.entries(config.pools).map(([name, pool]) => ({
        name,
        min: pool.min,
        max: pool.max,
        initial: pool.initial ?? pool.min,
      })),
      registry,
      log,
      baseDir,
      placeholders: {
        model: config.model,
        served_model: served,
        gpu: config.gpu,
        tp: String(config.tensor_parallelism),
      },
    });
    actuator = processActuator;
    logTail = (id) => processActuator.logTail(id);
    pools = () => plans;
    units = () => unitList;
  } else {
    const { KubernetesActuator } = await import("./actuators/kubernetes.ts");
    const k8s = new KubernetesActuator({
      loaded,
      hardware,
      registry,
      log,
      buildPolicy: (context) => buildConfiguredPolicy(loaded, context),
    });
    actuator = k8s;
    pools = () => k8s.pools();
    units = () => (autoscaling.enabled ? k8s.units() : []);
    stateStore = k8s.stateStore();
  }

  const gateway = new Gateway(registry, {
    servedModelName: served,
    queueMaxSize: config.queue.max_size,
    queueTimeout_s: config.queue.timeout_s,
    requestTimeout_s: config.requests.timeout_s,
    retries: config.requests.retries,
    strategy: config.routing.strategy,
    maxConcurrencyPerWorker: config.routing.max_concurrency_per_worker,
    defaultMaxTokens: 256,
    startupDelay_s: Math.min(...[...pools().values()].map((plan) => plan.capacity.startupDelay_s), 60),
    log,
    capacityPossible: () =>
      registry.live().length > 0 ||
      (autoscaling.enabled && [...pools().values()].some((plan) => plan.max > 0)),
    kvUsage: (id) => collector.metricsFor(id)?.gauges[GAUGES.kvCacheUsage],
    healthUrl: (worker) =>
      worker.url === undefined
        ? undefined
        : `${worker.url}${config.actuator.type === "process" ? config.actuator.health_path : "/health"}`,
  });
  const metrics = new GatewayMetrics({
    queue: () => ({
      length: gateway.queue.length,
      workerBusy: gateway.queue.count("WorkerBusy"),
      noWorker: gateway.queue.count("NoWorker"),
      oldestAge_s: gateway.queue.oldestAgeMs(Date.now()) / 1000,
    }),
    replicas: () => {
      const out: { pool: string; state: string; count: number }[] = [];
      for (const pool of pools().keys())
        for (const state of ["starting", "ready", "draining", "stopping"])
          out.push({ pool, state, count: registry.live(pool).filter((w) => w.phase === state).length });
      return out;
    },
    desired: () =>
      [...pools().values()].map((plan) => ({
        pool: plan.name,
        desired: actuator.desired(plan.name),
        min: plan.min,
        max: plan.max,
      })),
    inFlight: () => gateway.stats.inFlight,
  });
  gateway.observer = metrics;

  const controller =
    autoscaling.enabled || config.actuator.type === "kubernetes"
      ? new Controller({
          clock,
          registry,
          collector,
          gateway,
          actuator,
          pools,
          units,
          scrapeInterval_s: autoscaling.scrape_interval_s,
          ...(autoscaling.decision_interval_s === undefined
            ? {}
            : { decisionInterval_s: autoscaling.decision_interval_s }),
          log,
          metrics,
          ...(autoscaling.decision_log === undefined
            ? {}
            : { decisionLogPath: resolve(baseDir, autoscaling.decision_log) }),
          ...(stateStore === undefined ? {} : { stateStore }),
        })
      : undefined;

  const app = createHttpApp({
    bodyLimit: config.requests.max_body_bytes,
    log,
    forceClose: "idle",
    onRefused: () => gateway.stats.invalid++,
  });
  gateway.install(app);
  installAdminRoutes(app, {
    name: config.name ?? source,
    model: config.model,
    servedModelName: served,
    actuator: actuator.kind,
    startedAtMs: Date.now(),
    registry,
    gateway,
    collector,
    controller,
    pools,
    desired: (pool) => actuator.desired(pool),
    ...(logTail === undefined ? {} : { logTail }),
  });
  app.get("/metrics", async (_request, reply) => {
    const page = await metrics.page();
    return reply.type(page.contentType).send(page.body);
  });
  app.get("/health", () => Promise.resolve({ status: "ok", ready_workers: registry.routable().length }));

  try {
    await app.listen({
      host: overrides.host ?? config.listen.host,
      port: overrides.port ?? config.listen.port,
    });
  } catch (error) {
    await actuator.close();
    throw new UsageError(
      `cannot listen on ${overrides.host ?? config.listen.host}:${overrides.port ?? config.listen.port}: ${(error as Error).message}`,
    );
  }
  const url = baseUrlOf(app);
  try {
    await actuator.start();
    await controller?.start();
  } catch (error) {
    await controller?.stop();
    await actuator.close();
    await app.close();
    throw error;
  }
  log.info(
    `gateway for ${served} at ${url} (${actuator.kind} actuator, ${controller === undefined ? "fixed fleet" : `policies: ${controller.policyNames().join(", ") || "from bindings"}`})`,
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    config,
    registry,
    gateway,
    collector,
    controller,
    actuator,
    hardware,
    close() {
      closing ??= (async () => {
        await controller?.stop();
        gateway.shutdown();
        await actuator.close();
        await app.close();
        await gateway.close();
      })();
      return closing;
    },
  };
}
