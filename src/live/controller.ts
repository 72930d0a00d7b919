/**
 * The live control loop: scrape → Observation → policy.decide → actuator, with a decision log.
 *
 * It is the simulator's AutoscalingController on wall time: the same Observation shape (replicas and
 * phases from the actuator, metrics from the scrapes, traffic and queue from the gateway), the same
 * policy objects from the same registry, and the same reconcile rule (a pool below its minimum is
 * restored even when the policy says nothing; targets are clamped to [min, max]).
 *
 * Time: policies see `LiveClock` seconds, Unix time by default. With `time_scale` k, policy time runs
 * k times faster than wall time (and decision intervals shrink k times), so seed YAML with
 * minutes-long windows can be exercised in seconds. Scrape interval, timeout and staleness are
 * plumbing and stay in wall seconds.
 */
import { appendFile } from "node:fs/promises";
import type {
  Decision,
  Observation,
  Policy,
  PoolCapacity,
  PoolRole,
  PoolView,
  ReplicaPhase,
  ReplicaView,
} from "../policy/types.ts";
import type { MetricsCollector, ScrapeTarget } from "./collector.ts";
import type { Gateway } from "./gateway/gateway.ts";
import type { GatewayMetrics } from "./gateway/metrics.ts";
import type { Logger } from "./log.ts";
import type { Worker, WorkerRegistry } from "./workers.ts";

export class LiveClock {
  readonly originMs: number;
  constructor(
    readonly scale = 1,
    readonly nowMs: () => number = Date.now,
  ) {
    this.originMs = nowMs();
  }
  /** Policy seconds at a wall time in ms. */
  toPolicy(wallMs: number): number {
    return (this.originMs + (wallMs - this.originMs) * this.scale) / 1000;
  }
  policyNow(): number {
    return this.toPolicy(this.nowMs());
  }
  /** Wall milliseconds for a span of policy seconds. */
  wallMsFor(policySeconds: number): number {
    return (policySeconds * 1000) / this.scale;
  }
}

export interface PoolPlan {
  readonly name: string;
  readonly role: PoolRole;
  readonly min: number;
  readonly max: number;
  readonly capacity: PoolCapacity;
}

/** A policy and the pools it scales (one per config, or one per Kubernetes binding). */
export interface UnitSpec {
  readonly name: string;
  /** Changes when the policy's definition changes (its state is then reset). */
  readonly fingerprint: string;
  readonly pools: readonly string[];
  build(): Policy;
  /** Decision interval override (policy seconds); default the policy's own. */
  readonly interval_s?: number;
}

export interface Actuator {
  readonly kind: "process" | "kubernetes";
  /** Brings the fleet to its initial size (and, for Kubernetes, reads bindings and pods). */
  start(): Promise<void>;
  /** Re-reads the world before a decision (Kubernetes: bindings, scale targets and pods). */
  refresh?(): Promise<void>;
  /** The pool's current target: workers starting or ready (draining ones are on their way out). */
  desired(pool: string): number;
  /** Moves the pool towards `target` (already clamped); returns the new target. */
  reconcile(pool: string, target: number, victims: readonly string[], reason: string): Promise<number>;
  /** Where a worker's metrics page is. */
  metricsUrl(worker: Worker): string | undefined;
  close(): Promise<void>;
}

/** Keeps policy state across controller restarts (Kubernetes: a ConfigMap). */
export interface StateStore {
  load(): Promise<Readonly<Record<string, { fingerprint: string; state: unknown }>>>;
  save(
    units: Readonly<Record<string, { fingerprint: string; state: unknown }>>,
    decisions: readonly DecisionRecord[],
  ): Promise<void>;
}

export interface DecisionRecord {
  /** Wall time, ISO 8601. */
  readonly at: string;
  /** Policy time (seconds). */
  readonly t_s: number;
  readonly unit: string;
  readonly pool: string;
  readonly from: number;
  readonly to: number;
  readonly reasons: readonly string[];
}

export interface TickRecord {
  readonly at: string;
  readonly unit: string;
  readonly policy: string;
  readonly targets: Decision["targets"];
  readonly reasons: readonly string[];
  readonly error?: string;
}

interface UnitRuntime {
  spec: UnitSpec;
  policy: Policy;
  state: unknown;
  timer: NodeJS.Timeout | undefined;
  lastTraffic: {
    atMs: number;
    arrivals: number;
    promptTokens: number;
    outputTokens: number;
    completions: number;
  };
  running: Promise<void> | undefined;
}

export interface ControllerOptions {
  readonly clock: LiveClock;
  readonly registry: WorkerRegistry;
  readonly collector: MetricsCollector;
  readonly gateway: Gateway;
  readonly actuator: Actuator;
  readonly pools: () => ReadonlyMap<string, PoolPlan>;
  readonly units: () => readonly UnitSpec[];
  /** Wall seconds between scrapes (plumbing: not compressed by the clock's scale). */
  readonly scrapeInterval_s: number;
  /** Decision interval override for every unit (policy seconds). */
  readonly decisionInterval_s?: number;
  readonly log: Logger;
  readonly metrics?: GatewayMetrics;
  readonly decisionLogPath?: string;
  readonly stateStore?: StateStore;
  /** External metrics added to every observation (fleet aggregates are added automatically). */
  readonly external?: () => Readonly<Record<string, number>>;
}

const KEEP_DECISIONS = 500;
const MIN_WALL_INTERVAL_MS = 20;

export class Controller {
  private readonly runtimes = new Map<string, UnitRuntime>();
  private readonly decisionLog: DecisionRecord[] = [];
  private readonly lastTicks = new Map<string, TickRecord>();
  private scrapeTimer: NodeJS.Timeout | undefined;
  private scraping: Promise<void> | undefined;
  private stopped = true;
  private restored: Readonly<Record<string, { fingerprint: string; state: unknown }>> = {};
  decisionsMade = 0;

  constructor(private readonly options: ControllerOptions) {}

  get clock(): LiveClock {
    return this.options.clock;
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.options.stateStore !== undefined) {
      try {
        this.restored = await this.options.stateStore.load();
        const names = Object.keys(this.restored);
        if (names.length > 0) this.options.log.info(`restored policy state of ${names.join(", ")}`);
      } catch (error) {
        this.options.log.warn(`could not load saved policy state (starting fresh): ${message(error)}`);
      }
    }
    this.syncUnits();
    this.scheduleScrape(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.scrapeTimer !== undefined) clearTimeout(this.scrapeTimer);
    for (const runtime of this.runtimes.values())
      if (runtime.timer !== undefined) clearTimeout(runtime.timer);
    await Promise.allSettled([this.scraping, ...[...this.runtimes.values()].map((r) => r.running)]);
  }

  decisions(limit = 100): readonly DecisionRecord[] {
    return this.decisionLog.slice(-limit);
  }

  lastTick(): readonly TickRecord[] {
    return [...this.lastTicks.values()];
  }

  unitNames(): string[] {
    return [...this.runtimes.keys()];
  }

  policyNames(): string[] {
    return [...this.runtimes.values()].map((runtime) => runtime.policy.name);
  }

  /** Creates, rebuilds (definition changed) or drops units to match `options.units()`. */
  syncUnits(): void {
    const specs = this.options.units();
    const wanted = new Set(specs.map((spec) => spec.name));
    for (const [name, runtime] of this.runtimes) {
      if (wanted.has(name)) continue;
      if (runtime.timer !== undefined) clearTimeout(runtime.timer);
      this.runtimes.delete(name);
      this.options.log.info(`policy unit ${name} removed`);
    }
    for (const spec of specs) {
      const existing = this.runtimes.get(spec.name);
      if (existing !== undefined && existing.spec.fingerprint === spec.fingerprint) {
        existing.spec = spec;
        continue;
      }
      let policy: Policy;
      try {
        policy = spec.build();
      } catch (error) {
        this.options.log.error(
          `policy unit ${spec.name}: cannot build its policy (keeping the previous one, if any): ${message(error)}`,
        );
        continue;
      }
      const restored = this.restored[spec.name];
      const now = this.clock.policyNow();
      const state =
        restored !== undefined && restored.fingerprint === spec.fingerprint
          ? restored.state
          : policy.init(now);
      if (restored !== undefined && restored.fingerprint === spec.fingerprint)
        this.options.log.info(`policy unit ${spec.name}: resumed from saved state`);
      if (existing?.timer !== undefined) clearTimeout(existing.timer);
      const stats = this.options.gateway.stats;
      const runtime: UnitRuntime = {
        spec,
        policy,
        state,
        timer: undefined,
        lastTraffic: {
          atMs: this.clock.nowMs(),
          arrivals: stats.arrivals,
          promptTokens: stats.promptTokens,
          outputTokens: stats.outputTokens,
          completions: stats.completions,
        },
        running: undefined,
      };
      this.runtimes.set(spec.name, runtime);
      this.options.log.info(
        `policy unit ${spec.name}: ${policy.name} over pool(s) ${spec.pools.join(", ")}, every ${this.intervalOf(runtime)} s (policy time)`,
      );
      if (!this.stopped) this.scheduleDecision(runtime);
    }
  }

  private intervalOf(runtime: UnitRuntime): number {
    return this.options.decisionInterval_s ?? runtime.spec.interval_s ?? runtime.policy.interval_s;
  }

  private scheduleScrape(delayMs: number): void {
    if (this.stopped) return;
    this.scrapeTimer = setTimeout(() => {
      this.scraping = this.scrapeOnce().finally(() => {
        this.scraping = undefined;
        this.scheduleScrape(Math.max(MIN_WALL_INTERVAL_MS, this.options.scrapeInterval_s * 1000));
      });
    }, delayMs);
  }

  private scheduleDecision(runtime: UnitRuntime): void {
    if (this.stopped) return;
    const delay = Math.max(MIN_WALL_INTERVAL_MS, this.clock.wallMsFor(this.intervalOf(runtime)));
    runtime.timer = setTimeout(() => {
      runtime.running = this.decideOnce(runtime).finally(() => {
        runtime.running = undefined;
        if (this.runtimes.get(runtime.spec.name) === runtime) this.scheduleDecision(runtime);
      });
    }, delay);
  }

  /** Scrapes every ready or draining worker; never throws. */
  async scrapeOnce(): Promise<void> {
    const targets: ScrapeTarget[] = [];
    for (const worker of this.options.registry.live()) {
      if (worker.phase !== "ready" && worker.phase !== "draining") continue;
      const url = this.options.actuator.metricsUrl(worker);
      if (url !== undefined) targets.push({ id: worker.id, url });
    }
    const before = this.options.collector.scrapeErrors;
    try {
      await this.options.collector.scrapeAll(targets);
    } catch (error) {
      this.options.log.error(`scrape failed: ${message(error)}`);
    }
    const failed = this.options.collector.scrapeErrors - before;
    if (failed > 0) this.options.metrics?.scrapeFailed(failed);
  }

  /** What the controller can know now, for one unit. */
  observe(runtime: UnitRuntime): Observation {
    const { clock, registry, collector, gateway } = this.options;
    const nowMs = clock.nowMs();
    const plans = this.options.pools();
    const pools: PoolView[] = [];
    for (const name of runtime.spec.pools) {
      const plan = plans.get(name);
      if (plan === undefined) continue;
      const replicas: ReplicaView[] = registry.live(name).map((worker) => ({
        id: worker.id,
        pool: name,
        phase: phaseOf(worker),
        phaseSince_s: clock.toPolicy(worker.phaseSinceMs),
        createdAt_s: clock.toPolicy(worker.createdAtMs),
        sku: plan.capacity.sku,
        gpus: plan.capacity.gpusPerReplica,
        costPerHour_usd: plan.capacity.costPerReplicaHour_usd,
        restarts: worker.restarts,
        lastServedAt_s: clock.toPolicy(worker.lastServedAtMs),
        sessions: 0,
        metrics: worker.phase === "starting" ? undefined : collector.metricsFor(worker.id),
      }));
      pools.push({
        name,
        role: plan.role,
        desired: this.options.actuator.desired(name),
        min: plan.min,
        max: plan.max,
        replicas,
        capacity: plan.capacity,
      });
    }
    const stats = gateway.stats;
    const last = runtime.lastTraffic;
    const traffic = {
      window_s: Math.max(0, clock.toPolicy(nowMs) - clock.toPolicy(last.atMs)),
      arrivals: stats.arrivals - last.arrivals,
      promptTokens: stats.promptTokens - last.promptTokens,
      outputTokens: stats.outputTokens - last.outputTokens,
      completions: stats.completions - last.completions,
    };
    runtime.lastTraffic = {
      atMs: nowMs,
      arrivals: stats.arrivals,
      promptTokens: stats.promptTokens,
      outputTokens: stats.outputTokens,
      completions: stats.completions,
    };
    const queue = gateway.queue;
    const fleet = collector.fleetQuantiles(0.9);
    const external: Record<string, number> = {
      gateway_queue_length: queue.length,
      gateway_in_flight: stats.inFlight,
      ...(fleet.ttft_s === undefined ? {} : { ttft_p90_seconds: fleet.ttft_s }),
      ...(fleet.itl_s === undefined ? {} : { itl_p90_seconds: fleet.itl_s }),
      ...(this.options.external?.() ?? {}),
    };
    return {
      now: clock.toPolicy(nowMs),
      pools,
      traffic,
      queue: {
        dueBusy: queue.count("WorkerBusy"),
        noReplica: queue.count("NoWorker"),
        oldestAge_s: (queue.oldestAgeMs(nowMs) / 1000) * clock.scale,
      },
      external,
    };
  }

  /** One decision of one unit; never throws (a failing policy or actuator is logged, the loop goes on). */
  private async decideOnce(runtime: UnitRuntime): Promise<void> {
    const { actuator, log } = this.options;
    const at = new Date(this.clock.nowMs()).toISOString();
    try {
      await actuator.refresh?.();
    } catch (error) {
      log.warn(`could not refresh the fleet before deciding: ${message(error)}`);
    }
    this.syncUnits();
    if (this.runtimes.get(runtime.spec.name) !== runtime) return;
    let observation: Observation;
    let decision: Decision;
    try {
      observation = this.observe(runtime);
      const result = runtime.policy.decide(observation, runtime.state);
      decision = result.decision;
      runtime.state = result.state;
    } catch (error) {
      log.error(`policy ${runtime.policy.name} (${runtime.spec.name}) failed: ${message(error)}`);
      this.lastTicks.set(runtime.spec.name, {
        at,
        unit: runtime.spec.name,
        policy: runtime.policy.name,
        targets: {},
        reasons: [],
        error: message(error),
      });
      return;
    }
    this.decisionsMade++;
    this.lastTicks.set(runtime.spec.name, {
      at,
      unit: runtime.spec.name,
      policy: runtime.policy.name,
      targets: decision.targets,
      reasons: decision.reasons,
    });
    const plans = this.options.pools();
    for (const view of observation.pools) {
      const plan = plans.get(view.name);
      if (plan === undefined) continue;
      const target = decision.targets[view.name];
      const before = view.desired;
      const policyTarget =
        target !== undefined && Number.isFinite(target.desired) ? target.desired : undefined;
      const wanted = policyTarget ?? (before < plan.min ? plan.min : undefined);
      if (wanted === undefined) {
        this.options.metrics?.decision(view.name, "hold");
        continue;
      }
      const clamped = Math.min(Math.max(Math.round(wanted), plan.min), plan.max);
      const reasons = policyTarget === undefined ? [`below the pool minimum ${plan.min}`] : decision.reasons;
      let after = before;
      try {
        after = await actuator.reconcile(view.name, clamped, target?.victims ?? [], reasons.join("; "));
      } catch (error) {
        log.error(`actuator ${actuator.kind} could not scale ${view.name} to ${clamped}: ${message(error)}`);
      }
      this.options.metrics?.decision(view.name, after > before ? "up" : after < before ? "down" : "hold");
      if (after !== before) {
        const record: DecisionRecord = {
          at,
          t_s: observation.now,
          unit: runtime.spec.name,
          pool: view.name,
          from: before,
          to: after,
          reasons,
        };
        this.decisionLog.push(record);
        if (this.decisionLog.length > KEEP_DECISIONS)
          this.decisionLog.splice(0, this.decisionLog.length - KEEP_DECISIONS);
        log.info(`scale ${view.name} ${before} → ${after}: ${reasons.join("; ")}`);
        if (this.options.decisionLogPath !== undefined) {
          try {
            await appendFile(this.options.decisionLogPath, `${JSON.stringify(record)}\n`);
          } catch (error) {
            log.warn(`cannot append to the decision log ${this.options.decisionLogPath}: ${message(error)}`);
          }
        }
      }
    }
    await this.saveState();
  }

  private async saveState(): Promise<void> {
    const store = this.options.stateStore;
    if (store === undefined) return;
    const units: Record<string, { fingerprint: string; state: unknown }> = {};
    for (const [name, runtime] of this.runtimes)
      units[name] = { fingerprint: runtime.spec.fingerprint, state: runtime.state };
    try {
      await store.save(units, this.decisionLog.slice(-20));
    } catch (error) {
      this.options.log.warn(`could not save policy state: ${message(error)}`);
    }
  }

  /** Runs one scrape and one decision of every unit now (tests and `--once`). */
  async tickNow(): Promise<void> {
    await this.scrapeOnce();
    for (const runtime of [...this.runtimes.values()]) await this.decideOnce(runtime);
  }
}

function phaseOf(worker: Worker): ReplicaPhase {
  if (worker.phase === "starting") return "starting";
  if (worker.phase === "ready") return "ready";
  return "draining";
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
