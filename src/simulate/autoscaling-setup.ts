import { Rng } from "../core/rng.ts";
import type { AutoscalingConfig, DelaySpec } from "../config/autoscaling-schema.ts";
import type { SimulationConfig } from "../config/config.ts";
import { ConfigError } from "../errors.ts";
import { kvBytesPerToken, lookup, type Catalog, type ModelSpec } from "../model/catalog.ts";
import type { PerformanceModel } from "../model/performance.ts";
import type { PolicyContext } from "../policy/registry.ts";
import type { Policy, PoolCapacity, PoolRole } from "../policy/types.ts";
import { ScalingManager, type PoolSpec } from "../scaling/manager.ts";
import type { InstanceTemplate } from "../serving/cluster.ts";
import type { InstanceRole } from "../serving/instance.ts";
import { AutoscalingController } from "./autoscaling.ts";
import { SimObserver, type ObservedPool } from "./observer.ts";
import { startStateOf } from "./setup.ts";
import type { Simulation } from "./simulation.ts";

const ROLE_OF_TAG: Record<string, PoolRole> = { prompt: "prefill", token: "decode", mixed: "mixed" };
const TAG_OF_ROLE: Record<PoolRole, InstanceRole> = { prefill: "prompt", decode: "token", mixed: null };

/** A pool as the start state and the autoscaling config describe it, before anything runs. */
export interface PoolPlan {
  readonly name: string;
  readonly role: PoolRole;
  readonly sku: string;
  readonly template: InstanceTemplate;
  readonly min: number;
  readonly max: number;
  readonly startupDelay: DelaySpec;
}

/** Default pool names and where their instances come from in each start state. */
function startStatePools(
  config: SimulationConfig,
): { name: string; role: PoolRole; sku: string; template: InstanceTemplate }[] {
  const state = startStateOf(config);
  const groups = config.cluster.servers;
  const firstSku = groups[0]?.sku ?? "dgx-h100";
  switch (state.type) {
    case "baseline":
    case "orca":
      return [{ name: "mixed", role: "mixed", sku: firstSku, template: state.instance }];
    case "splitwise": {
      if (state.split === "heterogeneous") {
        return [
          { name: "prefill", role: "prefill", sku: state.prompt.skus[0] ?? firstSku, template: state.prompt },
          { name: "decode", role: "decode", sku: state.token.skus[0] ?? firstSku, template: state.token },
        ];
      }
      // Homogeneous: the first num_instances servers (in config order) host prompt instances.
      const servers = groups.flatMap((group) => Array.from({ length: group.count }, () => group.sku));
      const promptSku = servers[0] ?? firstSku;
      const tokenSku = servers[state.prompt.numInstances] ?? promptSku;
      return [
        { name: "prefill", role: "prefill", sku: promptSku, template: state.prompt },
        { name: "decode", role: "decode", sku: tokenSku, template: state.token },
      ];
    }
    case "unallocated":
      return [];
  }
}

const DEFAULT_TEMPLATE: InstanceTemplate = {
  kind: "splitwise",
  maxBatchSize: 512,
  maxBatchTokens: 2048,
  maxPreemptions: 4,
  tensorParallelism: 8,
  pipelineParallelism: 1,
};

/** The pools a run scales: the start state's, with `autoscaling.pools` overrides and additions. */
export function planPools(config: SimulationConfig, autoscaling: AutoscalingConfig): PoolPlan[] {
  const fromState = startStatePools(config);
  const plans: PoolPlan[] = fromState.map((pool) => {
    const override = autoscaling.pools[pool.name];
    return {
      name: pool.name,
      role: pool.role,
      sku: override?.sku ?? pool.sku,
      template: pool.template,
      min: override?.min ?? 1,
      max: override?.max ?? 64,
      startupDelay: override?.startup_delay_s ?? autoscaling.startup_delay_s,
    };
  });
  for (const [name, override] of Object.entries(autoscaling.pools)) {
    if (plans.some((plan) => plan.name === name)) continue;
    if (override.role === undefined) {
      const known = fromState.map((pool) => pool.name).join(", ") || "none (start_state unallocated)";
      throw new ConfigError(
        `autoscaling.pools.${name}.role: a pool the start state does not create needs a role (prefill, decode or mixed); start-state pools: ${known}`,
      );
    }
    if (override.sku === undefined)
      throw new ConfigError(
        `autoscaling.pools.${name}.sku: a new pool needs the server SKU of its instances`,
      );
    plans.push({
      name,
      role: override.role,
      sku: override.sku,
      template: DEFAULT_TEMPLATE,
      min: override.min,
      max: override.max,
      startupDelay: override.startup_delay_s ?? autoscaling.startup_delay_s,
    });
  }
  if (plans.length === 0)
    throw new ConfigError(
      "autoscaling: no pools to scale (start_state unallocated and no autoscaling.pools)",
    );
  return plans;
}

export function meanDelay(spec: DelaySpec): number {
  if (typeof spec === "number") return spec;
  switch (spec.dist) {
    case "fixed":
      return spec.value;
    case "uniform":
      return (spec.min + spec.max) / 2;
    case "lognormal":
      return spec.mean;
  }
}

function delaySampler(spec: DelaySpec, rng: Rng): () => number {
  if (typeof spec === "number") return () => spec;
  switch (spec.dist) {
    case "fixed":
      return () => spec.value;
    case "uniform":
      return () => spec.min + (spec.max - spec.min) * rng.nextFloat();
    case "lognormal": {
      const sigmaSquared = Math.log(1 + spec.cv * spec.cv);
      const mu = Math.log(spec.mean) - sigmaSquared / 2;
      const sigma = Math.sqrt(sigmaSquared);
      return () => Math.exp(mu + sigma * rng.normal());
    }
  }
}

/** Static facts of a pool that planning policies use (capacity of one replica, cost, startup). */
export function poolCapacity(
  plan: PoolPlan,
  catalog: Catalog,
  model: ModelSpec,
  ignoreGqa: boolean,
): PoolCapacity {
  const sku = lookup(catalog.skus, "sku", plan.sku, `autoscaling.pools.${plan.name}.sku`);
  const processor = lookup(catalog.processors, "processor", sku.processor, `catalog sku ${sku.name}`);
  const kvBytes = kvBytesPerToken(model, ignoreGqa);
  const freeBytes = processor.memory_bytes * sku.gpus - model.weights_bytes;
  return {
    sku: sku.name,
    gpusPerReplica: sku.gpus,
    costPerReplicaHour_usd: sku.cost_per_hour_usd,
    startupDelay_s: meanDelay(plan.startupDelay),
    maxBatchSize: plan.template.maxBatchSize,
    maxBatchTokens: plan.template.maxBatchTokens,
    maxKvTokens: Math.max(0, Math.floor(freeBytes / kvBytes)),
  };
}

export interface AttachedAutoscaling {
  readonly policyName: string;
  /** Instances the start state created (what the fleet had before the first decision). */
  readonly initialReplicas: number;
  readonly manager: ScalingManager;
  readonly controller: AutoscalingController;
  readonly pools: readonly ObservedPool[];
}

/** Everything a policy factory needs to know about the pools of this config. */
export function policyContextFor(
  config: SimulationConfig,
  autoscaling: AutoscalingConfig,
  catalog: Catalog,
  model: ModelSpec,
  perf: PerformanceModel,
  source: string,
): PolicyContext {
  return {
    source,
    pools: planPools(config, autoscaling).map((plan) => {
      const sku = lookup(catalog.skus, "sku", plan.sku, `autoscaling.pools.${plan.name}.sku`);
      return {
        name: plan.name,
        role: plan.role,
        capacity: poolCapacity(plan, catalog, model, config.compat.kv_cache_ignores_gqa),
        latency: perf.forInstance(model.name, sku.processor, plan.template.tensorParallelism),
      };
    }),
  };
}

/**
 * Puts a ScalingManager under the simulation's fleet (the start state's instances are adopted as
 * ACTIVE) and a controller that runs `policy` on the simulated metrics pipeline.
 */
export function attachAutoscaling(
  simulation: Simulation,
  config: SimulationConfig,
  autoscaling: AutoscalingConfig,
  policy: Policy,
): AttachedAutoscaling {
  const catalog = simulation.cluster.catalog;
  const model = simulation.cluster.model;
  const plans = planPools(config, autoscaling);
  const manager = new ScalingManager(simulation, {
    drainCheckInterval_s: autoscaling.drain_check_interval_s,
    maxTotalInstances: autoscaling.max_total_instances,
    serversAvailable: autoscaling.servers_available,
  });
  const rng = new Rng(config.seed).fork("startup-delay");
  for (const plan of plans) {
    const spec: PoolSpec = {
      name: plan.name,
      tag: TAG_OF_ROLE[plan.role],
      sku: plan.sku,
      template: plan.template,
      min: plan.min,
      max: plan.max,
      startupDelay: delaySampler(plan.startupDelay, rng.fork(plan.name)),
    };
    manager.addPool(spec);
  }
  for (const instance of simulation.cluster.instances) {
    const role = ROLE_OF_TAG[instance.tag ?? "mixed"]!;
    const plan = plans.find((candidate) => candidate.role === role) ?? plans[0]!;
    manager.adopt(instance, plan.name);
  }
  const pools: ObservedPool[] = plans.map((plan) => ({
    name: plan.name,
    role: plan.role,
    capacity: poolCapacity(plan, catalog, model, config.compat.kv_cache_ignores_gqa),
  }));
  const observer = new SimObserver(simulation, manager, pools, autoscaling.metrics_delay_s);
  const decisionInterval = autoscaling.decision_interval_s ?? policy.interval_s;
  const scrapeInterval = autoscaling.scrape_interval_s ?? decisionInterval;
  const controller = new AutoscalingController(
    simulation,
    manager,
    observer,
    policy,
    pools,
    decisionInterval,
    scrapeInterval,
  );
  controller.start();
  return {
    policyName: policy.name,
    initialReplicas: simulation.cluster.instances.length,
    manager,
    controller,
    pools,
  };
}
