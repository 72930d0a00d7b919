import type { EventTarget } from "../core/clock.ts";
import type { Policy } from "../policy/types.ts";
import type { ScalingManager } from "../scaling/manager.ts";
import type { ObservedPool, SimObserver } from "./observer.ts";
import type { Simulation } from "./simulation.ts";

/** One decision that changed a pool's target. */
export interface DecisionRecord {
  readonly time_s: number;
  readonly pool: string;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

/** The fleet and its load at one decision tick, per pool. */
export interface ReplicaSample {
  readonly time_s: number;
  readonly pool: string;
  readonly starting: number;
  readonly active: number;
  readonly draining: number;
  readonly desired: number;
  /** Arrivals per second over the last interval (the whole front door, same for every pool). */
  readonly arrival_rate: number;
  /** Requests held at the scheduler. */
  readonly queued: number;
}

const SCRAPE = 1;
const DECIDE = 2;

/**
 * The control loop inside a simulation: scrape metrics every `scrapeInterval_s`, ask the policy
 * every `decisionInterval_s`, and hand its targets to the ScalingManager. Ticks stop when the workload
 * is done, so a run ends with its last request.
 */
export class AutoscalingController implements EventTarget {
  readonly decisions: DecisionRecord[] = [];
  readonly samples: ReplicaSample[] = [];
  private state: unknown;
  decisionsMade = 0;

  constructor(
    private readonly simulation: Simulation,
    private readonly manager: ScalingManager,
    private readonly observer: SimObserver,
    private readonly policy: Policy,
    private readonly pools: readonly ObservedPool[],
    private readonly decisionInterval_s: number,
    private readonly scrapeInterval_s: number,
  ) {
    this.state = policy.init(simulation.clock.now);
  }

  start(): void {
    const clock = this.simulation.clock;
    clock.schedule(0, this, SCRAPE);
    clock.schedule(this.decisionInterval_s, this, DECIDE);
  }

  /** Simulated seconds without a single completion, after the last arrival, before the loop gives up. */
  stallTimeout_s = 3600;
  private lastCompleted = -1;
  private lastProgress = 0;

  /**
   * The loop keeps the run alive while work remains; it stops once the workload is done, or when the
   * last request has arrived and nothing has completed for `stallTimeout_s` (a fleet that can never
   * serve what is left: the run ends and reports those requests unfinished instead of spinning).
   */
  private keepGoing(now: number): boolean {
    const sim = this.simulation;
    if (sim.finished) return false;
    if (sim.completed !== this.lastCompleted) {
      this.lastCompleted = sim.completed;
      this.lastProgress = now;
    }
    return !(sim.sourceExhausted && now - this.lastProgress > this.stallTimeout_s);
  }

  onEvent(kind: number): void {
    const sim = this.simulation;
    const now = sim.clock.now;
    if (kind === SCRAPE) {
      this.observer.scrape(now);
      if (this.keepGoing(now)) sim.clock.schedule(this.scrapeInterval_s, this, SCRAPE);
      return;
    }
    this.decide(now);
    if (this.keepGoing(now)) sim.clock.schedule(this.decisionInterval_s, this, DECIDE);
  }

  private decide(now: number): void {
    const observation = this.observer.observe(now);
    const { decision, state } = this.policy.decide(observation, this.state);
    this.state = state;
    this.decisionsMade++;
    const reason = decision.reasons.join("; ");
    for (const pool of this.pools) {
      const target = decision.targets[pool.name];
      const view = observation.pools.find((candidate) => candidate.name === pool.name);
      const before = view?.desired ?? 0;
      // A pool below its minimum is restored even when the policy says nothing about it.
      const spec = this.manager.requirePool(pool.name);
      const policyTarget =
        target !== undefined && Number.isFinite(target.desired) ? target.desired : undefined;
      const wanted = policyTarget ?? (before < spec.min ? spec.min : undefined);
      if (wanted !== undefined) {
        const why = policyTarget === undefined ? `below the pool minimum ${spec.min}` : reason;
        const after = this.manager.reconcile(pool.name, wanted, target?.victims ?? [], why);
        if (after !== before)
          this.decisions.push({ time_s: now, pool: pool.name, from: before, to: after, reason: why });
      }
      const status = this.manager.poolStatus(pool.name);
      this.samples.push({
        time_s: now,
        pool: pool.name,
        starting: status.starting,
        active: status.active,
        draining: status.draining,
        desired: status.starting + status.active,
        arrival_rate:
          observation.traffic.window_s > 0 ? observation.traffic.arrivals / observation.traffic.window_s : 0,
        queued: observation.queue.dueBusy + observation.queue.noReplica,
      });
    }
  }
}
