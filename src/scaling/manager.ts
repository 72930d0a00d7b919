import type { Clock, EventTarget } from "../core/clock.ts";
import type { Cluster, InstanceTemplate, Server } from "../serving/cluster.ts";
import { InstanceStatus, type Instance, type InstanceRole } from "../serving/instance.ts";
import type { RequestScheduler } from "../serving/schedulers/scheduler.ts";

/** What the manager needs from the simulation around it. */
export interface ScalingHost {
  readonly clock: Clock;
  readonly cluster: Cluster;
  readonly scheduler: RequestScheduler;
  /** An instance became ACTIVE: requests held at the scheduler may now fit. */
  instanceActivated(instance: Instance): void;
}

/** How one pool scales: what a new instance looks like and where it runs. */
export interface PoolSpec {
  readonly name: string;
  readonly tag: InstanceRole;
  readonly sku: string;
  readonly template: InstanceTemplate;
  readonly min: number;
  readonly max: number;
  /** Seconds from scale-up until ACTIVE; a sampler so delays can follow a distribution. */
  readonly startupDelay: () => number;
}

export interface ScalingManagerOptions {
  readonly drainCheckInterval_s: number;
  /** Cap on instances that are starting, active or draining, over all pools. */
  readonly maxTotalInstances: number;
  /** Servers that exist at most per SKU (a cloud quota); absent = unlimited. */
  readonly serversAvailable: Readonly<Record<string, number>>;
}

/** Seconds of GPU time per instance status (server GPUs times seconds). */
export interface GpuSecondsByState {
  starting: number;
  active: number;
  draining: number;
}

export type ScalingAction =
  "scale_up" | "activate" | "drain" | "abort_drain" | "cancel_scale_up" | "remove" | "refused";

export interface ScalingEvent {
  readonly time_s: number;
  readonly action: ScalingAction;
  readonly pool: string;
  readonly instance: number;
  readonly detail: string;
}

export interface PoolStatus {
  readonly starting: number;
  readonly active: number;
  readonly draining: number;
}

export interface StatusSummary {
  readonly active_instances: number;
  readonly scaling_up_instances: number;
  readonly draining_instances: number;
  readonly total_servers: number;
  readonly total_instances: number;
}

const START_COMPLETE = 1;
const DRAIN_CHECK = 2;

/** Timer payload: which instance an event is about (objects, so the clock stays allocation-light). */
class InstanceTimer implements EventTarget {
  handle = -1;
  constructor(
    readonly manager: ScalingManager,
    readonly instance: Instance,
  ) {}
  onEvent(kind: number): void {
    this.manager.onTimer(this, kind);
  }
}

/**
 * Server and instance lifecycles (seeds 000/001): one server per instance. An instance is
 * SCALING_UP for its startup delay, then ACTIVE; a scale-down makes it DRAINING (schedulers stop
 * sending it work, running work finishes), then it and its server are removed. Starting and draining
 * time is paid for: GPU-seconds are accounted per state.
 *
 * Fixes the upstream defects of spec §8.4: schedulers never see non-ACTIVE instances, drains finish
 * because no new work arrives, the server is released with its instance, ids are never reused.
 */
export class ScalingManager {
  readonly pools = new Map<string, PoolSpec>();
  readonly events: ScalingEvent[] = [];
  private readonly timers = new Map<Instance, InstanceTimer>();
  /** Instances whose server goes away with them (one server per instance). */
  private readonly releaseWithInstance = new Set<Instance>();
  /** GPU-seconds of instances already removed, plus whatever was closed at status changes. */
  private readonly closedGpuSeconds: GpuSecondsByState = { starting: 0, active: 0, draining: 0 };

  constructor(
    private readonly host: ScalingHost,
    private readonly options: ScalingManagerOptions,
  ) {}

  addPool(spec: PoolSpec): void {
    this.pools.set(spec.name, spec);
  }

  /** Registers instances that existed before scaling started (the start state); they are ACTIVE. */
  adopt(instance: Instance, pool: string): void {
    instance.pool = pool;
    instance.status = InstanceStatus.Active;
    instance.statusSince = this.host.clock.now;
  }

  private get now(): number {
    return this.host.clock.now;
  }

  private log(action: ScalingAction, pool: string, instance: number, detail: string): void {
    this.events.push({ time_s: this.now, action, pool, instance, detail });
  }

  /** Instances of a pool (or all) that have not been removed, in creation order. */
  instancesOf(pool?: string): Instance[] {
    return this.host.cluster.instances.filter(
      (instance) =>
        instance.status !== InstanceStatus.Removed && (pool === undefined || instance.pool === pool),
    );
  }

  getActiveInstances(pool?: string): Instance[] {
    return this.instancesOf(pool).filter((instance) => instance.status === InstanceStatus.Active);
  }

  poolStatus(pool: string): PoolStatus {
    let starting = 0;
    let active = 0;
    let draining = 0;
    for (const instance of this.instancesOf(pool)) {
      if (instance.status === InstanceStatus.ScalingUp) starting++;
      else if (instance.status === InstanceStatus.Active) active++;
      else if (instance.status === InstanceStatus.Draining) draining++;
    }
    return { starting, active, draining };
  }

  statusSummary(): StatusSummary {
    let active = 0;
    let starting = 0;
    let draining = 0;
    for (const instance of this.instancesOf()) {
      if (instance.status === InstanceStatus.Active) active++;
      else if (instance.status === InstanceStatus.ScalingUp) starting++;
      else if (instance.status === InstanceStatus.Draining) draining++;
    }
    const servers = this.host.cluster.servers.filter((server) => server.removedAt < 0).length;
    return {
      active_instances: active,
      scaling_up_instances: starting,
      draining_instances: draining,
      total_servers: servers,
      total_instances: active + starting + draining,
    };
  }

  // ---- scale up -----------------------------------------------------------------------------------

  /** Why a scale-up of `pool` cannot happen now, or undefined when it can. */
  refusalReason(pool: PoolSpec, sku = pool.sku): string | undefined {
    const live = this.instancesOf();
    if (live.length >= this.options.maxTotalInstances)
      return `max_total_instances ${this.options.maxTotalInstances} reached`;
    const inPool = live.filter(
      (instance) => instance.pool === pool.name && instance.status !== InstanceStatus.Draining,
    ).length;
    if (inPool >= pool.max) return `pool max ${pool.max} reached`;
    const quota = this.options.serversAvailable[sku];
    if (quota !== undefined && this.host.cluster.liveServerCount(sku) >= quota) {
      return `no ${sku} server available (servers_available ${quota})`;
    }
    return undefined;
  }

  /**
   * Seed 000's `scale_up_full(instance_cfg, parallelism, tag, server_sku)`: a new server (of
   * `serverSku`, else the SKU of the pool serving `tag`) and one instance on all its GPUs, in the pool
   * of that tag. The instance is SCALING_UP until its startup delay has passed. Undefined when refused.
   */
  scaleUpFull(
    instanceCfg: InstanceTemplate,
    parallelism: { readonly tensor: number; readonly pipeline: number },
    tag: InstanceRole,
    serverSku?: string,
  ): { server: Server; instance: Instance } | undefined {
    const pool =
      [...this.pools.values()].find((candidate) => candidate.tag === tag) ?? [...this.pools.values()][0];
    if (pool === undefined) throw new Error("internal: scaleUpFull needs at least one pool");
    const template = {
      ...instanceCfg,
      tensorParallelism: parallelism.tensor,
      pipelineParallelism: parallelism.pipeline,
    };
    return this.scaleUpPool(pool.name, { template, ...(serverSku === undefined ? {} : { sku: serverSku }) });
  }

  /** One more instance in `poolName` on a new server of the pool's SKU (what reconcile uses). */
  scaleUpPool(
    poolName: string,
    override: { template?: InstanceTemplate; sku?: string } = {},
  ): { server: Server; instance: Instance } | undefined {
    const pool = this.requirePool(poolName);
    const sku = override.sku ?? pool.sku;
    const refusal = this.refusalReason(pool, sku);
    if (refusal !== undefined) {
      this.log("refused", pool.name, -1, refusal);
      return undefined;
    }
    const server = this.scaleUpServer(sku);
    const instance = this.scaleUpInstance(server, override.template ?? pool.template, pool.tag, pool.name);
    this.releaseWithInstance.add(instance);
    return { server, instance };
  }

  serverById(id: number): Server | undefined {
    return this.host.cluster.servers[id];
  }

  /** Lower level: a new server of `sku` (no instance on it yet). Its cost starts now. */
  scaleUpServer(sku: string): Server {
    return this.host.cluster.addServer(sku, `autoscaling server sku`);
  }

  /**
   * Lower level: an instance on `server` (its tensor x pipeline parallelism in GPUs, see
   * `Cluster.gpusForDedicatedInstance`) in pool `poolName`, SCALING_UP for the pool's startup delay.
   * The server stays when the instance is later removed by `scaleDownInstance`.
   */
  scaleUpInstance(server: Server, template: InstanceTemplate, tag: InstanceRole, poolName: string): Instance {
    const pool = this.requirePool(poolName);
    const instance = this.host.cluster.addInstance(
      server,
      this.host.cluster.gpusForDedicatedInstance(server, template),
      template,
      tag,
      `autoscaling.pools.${pool.name}`,
    );
    instance.pool = pool.name;
    instance.status = InstanceStatus.ScalingUp;
    instance.statusSince = this.now;
    this.host.scheduler.addInstance(instance);
    const delay = Math.max(0, pool.startupDelay());
    this.log(
      "scale_up",
      pool.name,
      instance.id,
      `server ${server.id} (${server.sku.name}), ready in ${delay.toFixed(1)} s`,
    );
    const timer = new InstanceTimer(this, instance);
    this.timers.set(instance, timer);
    timer.handle = this.host.clock.schedule(delay, timer, START_COMPLETE);
    return instance;
  }

  /** Lower level: releases a server that hosts no instance; the reason it cannot otherwise. */
  scaleDownServer(server: Server): string | undefined {
    if (server.removedAt >= 0) return `server ${server.id} was already released`;
    if (server.instances.length > 0)
      return `server ${server.id} still hosts ${server.instances.length} instance(s)`;
    this.host.cluster.removeServer(server, this.now);
    return undefined;
  }

  /** A scale-up that is no longer wanted: the starting instance and its server go away now. */
  cancelScaleUp(instance: Instance): boolean {
    if (instance.status !== InstanceStatus.ScalingUp) return false;
    const timer = this.timers.get(instance);
    if (timer !== undefined) this.host.clock.cancel(timer.handle);
    this.log("cancel_scale_up", instance.pool, instance.id, "no longer wanted");
    this.remove(instance);
    return true;
  }

  // ---- scale down ---------------------------------------------------------------------------------

  /** Seed 000's `scale_down_full`: drain `instance`, then remove it and release its server. */
  scaleDownFull(instance: Instance, reason = ""): boolean {
    this.releaseWithInstance.add(instance);
    return this.scaleDownInstance(instance, reason);
  }

  /**
   * Lower level: drain `instance` (no new work; running work finishes), then remove it. Its server is
   * released too only if the instance came from `scaleUpFull`/`scaleUpPool` or `scaleDownFull`.
   * A starting instance is cancelled instead. False when the instance is not ACTIVE or starting.
   */
  scaleDownInstance(instance: Instance, reason = ""): boolean {
    if (instance.status === InstanceStatus.ScalingUp) return this.cancelScaleUp(instance);
    if (instance.status !== InstanceStatus.Active) return false;
    this.setStatus(instance, InstanceStatus.Draining);
    this.log(
      "drain",
      instance.pool,
      instance.id,
      reason === "" ? `${instance.assignedWork} parts of requests to finish` : reason,
    );
    this.checkDrain(instance);
    return true;
  }

  /** Load came back: a draining instance becomes ACTIVE again (cheaper than starting a new one). */
  abortDrain(instance: Instance): boolean {
    if (instance.status !== InstanceStatus.Draining) return false;
    const timer = this.timers.get(instance);
    if (timer !== undefined) this.host.clock.cancel(timer.handle);
    this.timers.delete(instance);
    this.setStatus(instance, InstanceStatus.Active);
    this.log("abort_drain", instance.pool, instance.id, "load came back");
    this.host.instanceActivated(instance);
    return true;
  }

  private checkDrain(instance: Instance): void {
    if (instance.assignedWork === 0) {
      this.log(
        "remove",
        instance.pool,
        instance.id,
        `drained after ${(this.now - instance.statusSince).toFixed(1)} s`,
      );
      this.remove(instance);
      return;
    }
    let timer = this.timers.get(instance);
    if (timer === undefined) {
      timer = new InstanceTimer(this, instance);
      this.timers.set(instance, timer);
    }
    timer.handle = this.host.clock.schedule(this.options.drainCheckInterval_s, timer, DRAIN_CHECK);
  }

  onTimer(timer: InstanceTimer, kind: number): void {
    const instance = timer.instance;
    if (kind === START_COMPLETE) {
      if (instance.status !== InstanceStatus.ScalingUp) return;
      this.timers.delete(instance);
      this.setStatus(instance, InstanceStatus.Active);
      this.log(
        "activate",
        instance.pool,
        instance.id,
        `started in ${(this.now - instance.createdAt).toFixed(1)} s`,
      );
      this.host.instanceActivated(instance);
      return;
    }
    if (instance.status === InstanceStatus.Draining) this.checkDrain(instance);
  }

  private remove(instance: Instance): void {
    this.setStatus(instance, InstanceStatus.Removed);
    this.timers.delete(instance);
    this.host.scheduler.removeInstance(instance);
    const cluster = this.host.cluster;
    cluster.removeInstance(instance, this.now);
    const server = cluster.servers[instance.serverId];
    const release = this.releaseWithInstance.delete(instance);
    if (release && server !== undefined && server.instances.length === 0 && server.removedAt < 0) {
      cluster.removeServer(server, this.now);
    }
  }

  private setStatus(instance: Instance, status: InstanceStatus): void {
    this.closeGpuSeconds(instance);
    instance.status = status;
    instance.statusSince = this.now;
  }

  private closeGpuSeconds(instance: Instance): void {
    const seconds = (this.now - instance.statusSince) * instance.numGpus;
    if (instance.status === InstanceStatus.ScalingUp) this.closedGpuSeconds.starting += seconds;
    else if (instance.status === InstanceStatus.Active) this.closedGpuSeconds.active += seconds;
    else if (instance.status === InstanceStatus.Draining) this.closedGpuSeconds.draining += seconds;
  }

  /** GPU-seconds per state up to now (instances of the start state count as active from t = 0). */
  gpuSecondsByState(): GpuSecondsByState {
    const totals = { ...this.closedGpuSeconds };
    for (const instance of this.instancesOf()) {
      const seconds = (this.now - instance.statusSince) * instance.numGpus;
      if (instance.status === InstanceStatus.ScalingUp) totals.starting += seconds;
      else if (instance.status === InstanceStatus.Active) totals.active += seconds;
      else if (instance.status === InstanceStatus.Draining) totals.draining += seconds;
    }
    return totals;
  }

  /**
   * Moves a pool towards `desired` replicas (starting + active), clamped to the pool's [min, max].
   * Up: re-activate draining instances first (they are warm), then start new ones. Down: cancel
   * starting instances first (newest first: they have done no work), then drain the policy's
   * victims, then the least-loaded active instances. Returns the replicas targeted after the change.
   */
  reconcile(poolName: string, desired: number, victims: readonly string[] = [], reason = ""): number {
    const pool = this.requirePool(poolName);
    const target = Math.min(Math.max(Math.round(desired), pool.min), pool.max);
    const live = this.instancesOf(pool.name);
    const starting = live.filter((instance) => instance.status === InstanceStatus.ScalingUp);
    const active = live.filter((instance) => instance.status === InstanceStatus.Active);
    const draining = live.filter((instance) => instance.status === InstanceStatus.Draining);
    let current = starting.length + active.length;
    if (target > current) {
      draining.sort((a, b) => b.assignedWork - a.assignedWork || a.id - b.id);
      for (const instance of draining) {
        if (current >= target) break;
        if (this.abortDrain(instance)) current++;
      }
      while (current < target && this.scaleUpPool(pool.name) !== undefined) current++;
    } else if (target < current) {
      for (const instance of [...starting].reverse()) {
        if (current <= target) break;
        if (this.cancelScaleUp(instance)) current--;
      }
      const named = new Set(victims);
      const order = [...active].sort(
        (a, b) =>
          Number(named.has(String(b.id))) - Number(named.has(String(a.id))) ||
          a.assignedWork - b.assignedWork ||
          a.outstandingPrefillTokens - b.outstandingPrefillTokens ||
          b.id - a.id,
      );
      for (const instance of order) {
        if (current <= target) break;
        if (this.scaleDownFull(instance, reason)) current--;
      }
    }
    return current;
  }

  requirePool(name: string): PoolSpec {
    const pool = this.pools.get(name);
    if (pool === undefined) throw new Error(`internal: unknown pool "${name}"`);
    return pool;
  }
}

export { InstanceStatus };
export type { InstanceTemplate };
