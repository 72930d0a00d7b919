import {
  COUNTERS,
  GAUGES,
  HISTOGRAMS,
  type HistogramSnapshot,
  type Observation,
  type PoolCapacity,
  type PoolRole,
  type PoolView,
  type ReplicaMetrics,
  type ReplicaPhase,
  type ReplicaView,
} from "../policy/types.ts";
import type { ScalingManager } from "../scaling/manager.ts";
import type { Histogram } from "../serving/engine-metrics.ts";
import { InstanceStatus, type Instance } from "../serving/instance.ts";
import type { Simulation } from "./simulation.ts";

export interface ObservedPool {
  readonly name: string;
  readonly role: PoolRole;
  readonly capacity: PoolCapacity;
}

interface Scrape {
  readonly time: number;
  readonly metrics: Map<Instance, ReplicaMetrics>;
}

/**
 * Snapshots are immutable, so one whose histogram has not changed since the last scrape is reused:
 * most histograms of a replica are idle between scrapes (a prefill replica never records ITL), and
 * RL training scrapes every 2 simulated seconds for millions of steps.
 */
const snapshots = new WeakMap<Histogram, HistogramSnapshot>();

function snapshot(histogram: Histogram): HistogramSnapshot {
  const cached = snapshots.get(histogram);
  if (cached !== undefined && cached.count === histogram.count && cached.sum === histogram.sum) return cached;
  const fresh = {
    le: histogram.le,
    cumulative: histogram.cumulative(),
    count: histogram.count,
    sum: histogram.sum,
  };
  snapshots.set(histogram, fresh);
  return fresh;
}

/**
 * Builds what a controller could know, like a metrics pipeline would: replica phases are current
 * (the controller's own API), but gauges, counters and histograms come from periodic scrapes that
 * are `metricsDelay_s` old when a decision reads them. A replica not yet scraped at that time has no
 * metrics (missing, never zero). Traffic counts are what a gateway sees over the decision interval.
 */
export class SimObserver {
  private readonly scrapes: Scrape[] = [];
  private readonly lastBusy = new Map<Instance, { time: number; busy: number }>();
  private lastTraffic = { time: 0, arrivals: 0, promptTokens: 0, outputTokens: 0, completions: 0 };

  constructor(
    private readonly simulation: Simulation,
    private readonly manager: ScalingManager,
    private readonly pools: readonly ObservedPool[],
    private readonly metricsDelay_s: number,
  ) {
    // The scrapes read the engines' counters and histograms, which the simulation fills only on request.
    simulation.recordEngineMetrics = true;
  }

  /** Scrapes every live instance now (gauges instantaneous; GPU utilization since its last scrape). */
  scrape(now: number): void {
    const metrics = new Map<Instance, ReplicaMetrics>();
    for (const instance of this.manager.instancesOf()) {
      if (instance.status === InstanceStatus.ScalingUp) continue; // not serving /metrics yet
      const busy = instance.busyTimeAt(now);
      const previous = this.lastBusy.get(instance) ?? {
        time: instance.statusSince,
        busy: instance.busyTimeAt(instance.statusSince),
      };
      const span = now - previous.time;
      const utilization = span > 0 ? Math.min(1, Math.max(0, (busy - previous.busy) / span)) : 0;
      this.lastBusy.set(instance, { time: now, busy });
      const running = instance.batch.length;
      const waiting = instance.pendingQueue.length;
      const engine = instance.engineMetrics;
      metrics.set(instance, {
        gauges: {
          [GAUGES.running]: running,
          [GAUGES.waiting]: waiting,
          [GAUGES.concurrent]: instance.assignedWork,
          [GAUGES.kvCacheUsage]: instance.kvCacheUsage,
          [GAUGES.gpuUtilization]: utilization * 100,
          [GAUGES.pendingPrefillTokens]: instance.outstandingPrefillTokens,
        },
        counters: {
          [COUNTERS.promptTokens]: engine.promptTokens,
          [COUNTERS.generationTokens]: engine.generationTokens,
          [COUNTERS.requestsCompleted]: engine.requestsCompleted,
        },
        histograms: {
          [HISTOGRAMS.ttft]: snapshot(engine.ttft),
          [HISTOGRAMS.itl]: snapshot(engine.itl),
          [HISTOGRAMS.e2e]: snapshot(engine.e2e),
        },
      });
    }
    for (const instance of this.lastBusy.keys())
      if (instance.status === InstanceStatus.Removed) this.lastBusy.delete(instance);
    this.scrapes.push({ time: now, metrics });
    // Keep only what a delayed read can still reach.
    while (this.scrapes.length > 2 && this.scrapes[1]!.time <= now - this.metricsDelay_s)
      this.scrapes.shift();
  }

  private scrapeVisibleAt(now: number): Scrape | undefined {
    let visible: Scrape | undefined;
    for (const scrape of this.scrapes) if (scrape.time <= now - this.metricsDelay_s + 1e-9) visible = scrape;
    return visible;
  }

  observe(now: number): Observation {
    const scrape = this.scrapeVisibleAt(now);
    const pools: PoolView[] = this.pools.map((pool) => {
      const spec = this.manager.requirePool(pool.name);
      const replicas: ReplicaView[] = this.manager.instancesOf(pool.name).map((instance) => ({
        id: String(instance.id),
        pool: pool.name,
        phase: phaseOf(instance),
        phaseSince_s: instance.statusSince,
        createdAt_s: instance.createdAt,
        sku: instance.sku,
        gpus: instance.numGpus,
        costPerHour_usd: pool.capacity.costPerReplicaHour_usd,
        restarts: 0,
        lastServedAt_s: instance.lastServedAt,
        sessions: 0,
        metrics: scrape?.metrics.get(instance),
      }));
      const desired = replicas.filter((replica) => replica.phase !== "draining").length;
      return {
        name: pool.name,
        role: pool.role,
        desired,
        min: spec.min,
        max: spec.max,
        replicas,
        capacity: pool.capacity,
      };
    });
    const sim = this.simulation;
    const last = this.lastTraffic;
    const traffic = {
      window_s: now - last.time,
      arrivals: sim.arrived - last.arrivals,
      promptTokens: sim.arrivedPromptTokens - last.promptTokens,
      outputTokens: sim.completedOutputTokens - last.outputTokens,
      completions: sim.completed - last.completions,
    };
    this.lastTraffic = {
      time: now,
      arrivals: sim.arrived,
      promptTokens: sim.arrivedPromptTokens,
      outputTokens: sim.completedOutputTokens,
      completions: sim.completed,
    };
    const held = sim.waitingCount;
    const anyActive = this.manager.getActiveInstances().length > 0;
    const oldest = sim.oldestWaitingArrival;
    return {
      now,
      pools,
      traffic,
      queue: {
        dueBusy: anyActive ? held : 0,
        noReplica: anyActive ? 0 : held,
        oldestAge_s: Number.isNaN(oldest) ? 0 : now - oldest,
      },
      external: {},
    };
  }
}

function phaseOf(instance: Instance): ReplicaPhase {
  if (instance.status === InstanceStatus.ScalingUp) return "starting";
  if (instance.status === InstanceStatus.Draining) return "draining";
  return "ready";
}
