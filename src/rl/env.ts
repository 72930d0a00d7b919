import { autoscalingSchema, type AutoscalingConfig } from "../config/autoscaling-schema.ts";
import type { LoadedConfig } from "../config/config.ts";
import type { RlConfig } from "../config/rl-schema.ts";
import { rlSchema } from "../config/rl-schema.ts";
import { Rng } from "../core/rng.ts";
import { requestMeetsSlo, type SloSpec } from "../metrics/slo.ts";
import { holdDecision, type Observation, type Policy } from "../policy/types.ts";
import type { ScalingManager } from "../scaling/manager.ts";
import { InstanceStatus, type Instance } from "../serving/instance.ts";
import type { SimRequest } from "../serving/request.ts";
import { attachAutoscaling, planPools } from "../simulate/autoscaling-setup.ts";
import { defaultSloReference, sloSpecOf } from "../simulate/run.ts";
import { buildSetup } from "../simulate/setup.ts";
import { Simulation } from "../simulate/simulation.ts";
import type { RequestSource } from "../workload/types.ts";
import { actionDeltas, actionFractions, deltaDecision, type ActionKind } from "./actions.ts";
import { workloadTable, type EpisodeWorkload } from "./episodes.ts";
import {
  agentView,
  agentViewSize,
  extractFeatures,
  initialFeatureState,
  withActions,
  type FeatureSpec,
  type FeatureState,
} from "./features.ts";
import type { AgentLayout } from "./ppo.ts";
import {
  computeReward,
  type IntervalInfo,
  type Percentiles,
  type PoolInterval,
  type RewardBreakdown,
  type SloThresholds,
} from "./reward.ts";

/**
 * A gym-style environment over the simulator: `reset(seed, workload?)` → observation, `step(action)`
 * → { observation, reward, done, info }, one step per decision interval.
 *
 * The simulator is used as it is (Simulation + attachAutoscaling, exactly as `simulate` runs a
 * policy): the controller's policy is a bridge that hands the observation to the environment and
 * holds. The environment then stops the clock right after that decision event, returns the
 * observation, and `step(action)` applies the agent's decision through ScalingManager.reconcile at
 * the same simulated instant, which is what the controller does with any policy's decision; so pool
 * min/max, max_total_instances, startup delay and drain apply, and the trained `rl` policy later sees
 * the same observations through the same controller. Rewards read the simulator (training only).
 */

export interface EnvSettings {
  readonly interval_s: number;
  readonly kind: ActionKind;
  readonly scaleStep: number;
  readonly spec: FeatureSpec;
  readonly agents: readonly AgentLayout[];
}

export interface StepResult {
  /** The joint observation (every pool's features), stacked. */
  readonly observation: Float64Array;
  /** Each agent's own view (one entry for a joint agent, the same as `observation`). */
  readonly observations: readonly Float64Array[];
  /** The reward of the interval (a joint agent's, or the first agent's). */
  readonly reward: number;
  /** Per agent (they differ only for origin-slo with split agents). */
  readonly rewards: readonly number[];
  readonly done: boolean;
  /** True when the episode was cut at its time limit rather than finishing its requests. */
  readonly truncated: boolean;
  readonly info: IntervalInfo & { readonly breakdown: RewardBreakdown };
}

export interface EpisodeSummary {
  readonly steps: number;
  readonly reward: number;
  readonly arrived: number;
  readonly completed: number;
  readonly met: number;
  /** Requests meeting the SLO / requests arrived (unfinished ones count as misses). */
  readonly slo_attainment: number;
  readonly gpu_hours: number;
  readonly scale_events: number;
  readonly sim_time_s: number;
}

const COUNTED_EVENTS = new Set(["scale_up", "drain", "abort_drain", "cancel_scale_up"]);

/** Resolves the environment's shape (pools, agents, features, interval) from a config. */
export function envSettings(loaded: LoadedConfig, rl: RlConfig): EnvSettings {
  const autoscaling = autoscalingOf(loaded);
  const plans = planPools(loaded.config, autoscaling);
  const spec: FeatureSpec = {
    pools: plans.map((plan) => ({ name: plan.name, role: plan.role })),
    stack: rl.features.stack,
    count_scale: rl.features.count_scale,
    rate_scale: rl.features.rate_scale,
    ttft_slow_s: rl.features.ttft_slow_s,
  };
  const all = plans.map((_, index) => index);
  const agents: AgentLayout[] =
    rl.agents === "joint"
      ? [{ name: "joint", pools: all, inputSize: agentViewSize(spec, all.length) }]
      : all.map((index) => ({ name: plans[index]!.name, pools: [index], inputSize: agentViewSize(spec, 1) }));
  return {
    interval_s: rl.decision_interval_s ?? autoscaling.decision_interval_s ?? 2,
    kind: rl.action,
    scaleStep: rl.action_scale_step,
    spec,
    agents,
  };
}

function autoscalingOf(loaded: LoadedConfig): AutoscalingConfig {
  return loaded.config.autoscaling ?? autoscalingSchema.parse({});
}

function percentilesOf(values: number[]): Percentiles | null {
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  // Linear interpolation between closest ranks (numpy's default), like the run summary.
  const at = (q: number): number => {
    const position = q * (values.length - 1);
    const low = Math.floor(position);
    const high = Math.min(values.length - 1, low + 1);
    return values[low]! + (values[high]! - values[low]!) * (position - low);
  };
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

export class ScalingEnv {
  readonly settings: EnvSettings;
  readonly rl: RlConfig;
  private readonly slo: SloSpec;
  private readonly thresholds: SloThresholds;
  private readonly autoscaling: AutoscalingConfig;
  private readonly poolNames: string[];
  private readonly poolIndex: Map<string, number>;

  private sim: Simulation | undefined;
  private manager: ScalingManager | undefined;
  private pending: Observation | undefined;
  private observation: Observation | undefined;
  private features: FeatureState;
  private cutoff_s = Infinity;
  private finished = true;

  // Interval accounting (reset at every decision).
  private intervalStart = 0;
  private gpuSecondsAtStart = 0;
  private eventsSeen = 0;
  private arrivedAtStart = 0;
  private promptTokensAtStart = 0;
  private completedInInterval = 0;
  private missedInInterval = 0;
  private ttftSlowdowns: number[] = [];
  private tbtSlowdowns: number[] = [];
  private readonly busyAtStart = new Map<Instance, number>();

  // Episode totals.
  private steps = 0;
  private rewardSum = 0;
  private met = 0;
  private scaleEvents = 0;

  constructor(
    private readonly loaded: LoadedConfig,
    rl: RlConfig = rlSchema.parse({}),
  ) {
    this.rl = rl;
    this.settings = envSettings(loaded, rl);
    this.autoscaling = autoscalingOf(loaded);
    this.slo = sloSpecOf(loaded);
    this.thresholds = { ttft: this.slo.ttft_slowdown, tbt: this.slo.tbt_slowdown };
    this.poolNames = this.settings.spec.pools.map((pool) => pool.name);
    this.poolIndex = new Map(this.poolNames.map((name, index) => [name, index]));
    this.features = initialFeatureState(this.settings.spec);
  }

  /** Pools in action order. */
  get pools(): readonly string[] {
    return this.poolNames;
  }

  get done(): boolean {
    return this.finished;
  }

  /** The simulation of the current episode (tests and tools; not for agents). */
  get simulation(): Simulation {
    if (this.sim === undefined) throw new Error("env: call reset() first");
    return this.sim;
  }

  get scalingManager(): ScalingManager {
    if (this.manager === undefined) throw new Error("env: call reset() first");
    return this.manager;
  }

  /** The last observation a decision saw (what the deployed policy would get). */
  get lastObservation(): Observation | undefined {
    return this.observation;
  }

  /**
   * Starts an episode. `seed` drives the scheduler, startup delays and (in window mode) the window;
   * `workload` replaces the configured one (a request source or a prepared episode workload).
   */
  reset(seed: number, workload?: EpisodeWorkload | RequestSource): Float64Array {
    const config = { ...this.loaded.config, seed };
    const loaded = { ...this.loaded, config };
    const episode = this.episodeWorkload(seed, workload);
    const schedulerRng = new Rng(seed).fork("scheduler");
    const setup = buildSetup(config, this.loaded.baseDir, () => schedulerRng.nextFloat());
    const reference = config.metrics.slo_reference ?? defaultSloReference(loaded);
    const unloadedModel = setup.perf.forInstance(
      reference.model,
      reference.hardware,
      reference.tensor_parallelism,
    );
    const divideByAllTokens = config.compat.tbt_divides_by_all_tokens;
    const slo = this.slo;
    // Only origin-slo scores slowdown percentiles; the others need not sort them every step.
    const keepSlowdowns = this.rl.reward.variant === "origin-slo";
    const sim = new Simulation(setup, episode.source, {
      requestCompleted: (request: SimRequest, now: number) => {
        const ttft = request.firstTokenTime - request.arrivalTime;
        const e2e = now - request.arrivalTime;
        const divisor = divideByAllTokens ? request.outputTokens : request.outputTokens - 1;
        const tbt = divisor > 0 ? (e2e - ttft) / divisor : 0;
        const unloaded = unloadedModel.unloaded(request.promptTokens);
        const ttftSlowdown = ttft / unloaded.ttft_s;
        const tbtSlowdown = unloaded.tbt_s > 0 ? tbt / unloaded.tbt_s : 0;
        this.completedInInterval++;
        if (requestMeetsSlo(ttft, tbt, ttftSlowdown, tbtSlowdown, slo)) this.met++;
        else this.missedInInterval++;
        if (keepSlowdowns) {
          this.ttftSlowdowns.push(ttftSlowdown);
          this.tbtSlowdowns.push(tbtSlowdown);
        }
      },
    });
    const bridge: Policy<null> = {
      name: "rl-env",
      interval_s: this.settings.interval_s,
      init: () => null,
      decide: (observation) => {
        this.pending = observation;
        return { decision: holdDecision("rl env: action applied by step()"), state: null };
      },
    };
    const attached = attachAutoscaling(
      sim,
      config,
      { ...this.autoscaling, decision_interval_s: this.settings.interval_s },
      bridge,
    );
    this.sim = sim;
    this.manager = attached.manager;
    this.cutoff_s = episode.arrivalsEnd_s + this.rl.episode.max_drain_s;
    this.features = initialFeatureState(this.settings.spec);
    this.steps = 0;
    this.rewardSum = 0;
    this.met = 0;
    this.scaleEvents = 0;
    this.busyAtStart.clear();
    this.ttftSlowdowns = [];
    this.tbtSlowdowns = [];
    this.beginInterval(0);
    this.finished = !this.advance();
    if (this.finished) return new Float64Array(agentViewSize(this.settings.spec, this.poolNames.length));
    this.absorbObservation();
    // The first step's interval starts at this first decision.
    this.beginInterval(this.closeInterval(0).gpuSeconds);
    return this.view(this.allPools());
  }

  private episodeWorkload(
    seed: number,
    workload: EpisodeWorkload | RequestSource | undefined,
  ): EpisodeWorkload {
    if (workload !== undefined && "arrivalsEnd_s" in workload) return workload;
    if (workload !== undefined)
      return { source: workload, arrivalsEnd_s: Infinity, start_s: 0, requests: NaN };
    const table = workloadTable(this.loaded);
    const episode = this.rl.episode;
    return episode.mode === "whole"
      ? table.whole()
      : table.randomWindow(seed, episode.length_s, episode.rate_scale, episode.prompt_scale);
  }

  private allPools(): number[] {
    return this.poolNames.map((_, index) => index);
  }

  private view(pools: readonly number[]): Float64Array {
    return agentView(this.features.frames, this.settings.spec, pools);
  }

  /** The current observation as each agent sees it. */
  agentObservations(): Float64Array[] {
    return this.settings.agents.map((agent) => this.view(agent.pools));
  }

  /** Runs the clock until the controller's next decision; false when the episode's work is done. */
  private advance(): boolean {
    const sim = this.sim!;
    const clock = sim.clock;
    this.pending = undefined;
    while (this.pending === undefined) {
      if (sim.finished || !clock.step()) return false;
    }
    return true;
  }

  private absorbObservation(): void {
    const observation = this.pending!;
    this.observation = observation;
    this.features = extractFeatures(observation, this.features, this.settings.spec).state;
  }

  /** Starts the accounting of the next interval from the state `closeInterval` just measured. */
  private beginInterval(gpuSeconds: number): void {
    const sim = this.sim!;
    this.intervalStart = sim.clock.now;
    this.gpuSecondsAtStart = gpuSeconds;
    this.eventsSeen = this.manager!.events.length;
    this.arrivedAtStart = sim.arrived;
    this.promptTokensAtStart = sim.arrivedPromptTokens;
    this.completedInInterval = 0;
    this.missedInInterval = 0;
    if (this.ttftSlowdowns.length > 0) this.ttftSlowdowns = [];
    if (this.tbtSlowdowns.length > 0) this.tbtSlowdowns = [];
  }

  private closeInterval(unfinished: number): { info: IntervalInfo; gpuSeconds: number } {
    const sim = this.sim!;
    const manager = this.manager!;
    const now = sim.clock.now;
    const gpu = manager.gpuSecondsByState();
    const gpuSeconds = gpu.starting + gpu.active + gpu.draining;
    let scaleEvents = 0;
    let refused = 0;
    for (let i = this.eventsSeen; i < manager.events.length; i++) {
      const action = manager.events[i]!.action;
      if (COUNTED_EVENTS.has(action)) scaleEvents++;
      else if (action === "refused") refused++;
    }
    const specPools = this.settings.spec.pools;
    const counts = specPools.map(() => ({
      starting: 0,
      active: 0,
      draining: 0,
      busy: 0,
      span: 0,
      kv: 0,
      pending: 0,
    }));
    // One pass over the live instances: the manager's per-pool queries each scan every instance.
    const busyNow = this.busyAtStart;
    const busyBefore = new Map(busyNow);
    busyNow.clear();
    for (const instance of manager.instancesOf()) {
      const index = this.poolIndex.get(instance.pool);
      if (index === undefined) continue;
      const c = counts[index]!;
      if (instance.status === InstanceStatus.ScalingUp) c.starting++;
      else if (instance.status === InstanceStatus.Draining) c.draining++;
      else if (instance.status === InstanceStatus.Active) {
        c.active++;
        const since = Math.max(this.intervalStart, instance.statusSince);
        const busy = instance.busyTimeAt(now);
        c.busy += busy - (busyBefore.get(instance) ?? instance.busyTimeAt(since));
        c.span += now - since;
        c.kv += instance.kvCacheUsage;
        c.pending += instance.outstandingPrefillTokens;
        busyNow.set(instance, busy);
      }
    }
    const pools: PoolInterval[] = specPools.map((pool, index) => {
      const c = counts[index]!;
      return {
        name: pool.name,
        role: pool.role,
        starting: c.starting,
        active: c.active,
        draining: c.draining,
        busy_fraction: c.span > 0 ? Math.min(1, Math.max(0, c.busy / c.span)) : 0,
        kv_usage: c.active > 0 ? c.kv / c.active : 0,
        pending_prefill_tokens: c.pending,
      };
    });
    const arrivals = sim.arrived - this.arrivedAtStart;
    const promptTokens = sim.arrivedPromptTokens - this.promptTokensAtStart;
    const queued = sim.waitingCount;
    const meanPrompt = arrivals > 0 ? promptTokens / arrivals : 0;
    const info: IntervalInfo = {
      time_s: now,
      interval_s: now - this.intervalStart,
      arrivals,
      arrived_prompt_tokens: promptTokens,
      completed: this.completedInInterval,
      missed: this.missedInInterval,
      unfinished,
      gpu_seconds: gpu.starting + gpu.active + gpu.draining - this.gpuSecondsAtStart,
      pools,
      scale_events: scaleEvents,
      refused,
      queued,
      queued_prompt_tokens: queued * meanPrompt,
      ttft_slowdown: percentilesOf(this.ttftSlowdowns),
      tbt_slowdown: percentilesOf(this.tbtSlowdowns),
      prompt_max_pending_batch_tokens: this.loaded.config.scheduler.prompt_max_pending_batch_tokens,
    };
    return { info, gpuSeconds };
  }

  /**
   * Applies `action` (one value per pool, in `pools` order: continuous values or discrete choice
   * indices 0/1/2) and runs the simulation to the next decision.
   */
  step(action: ArrayLike<number>): StepResult {
    if (this.sim === undefined || this.manager === undefined) throw new Error("env: call reset() first");
    if (this.finished) throw new Error("env: the episode is over; call reset()");
    if (action.length !== this.poolNames.length)
      throw new RangeError(`env: expected ${this.poolNames.length} action values, got ${action.length}`);
    const { kind, scaleStep } = this.settings;
    const decision = deltaDecision(
      this.observation!,
      this.poolNames,
      actionDeltas(kind, action, scaleStep),
      "rl",
    );
    const reason = decision.reasons.join("; ");
    for (const name of this.poolNames) {
      const target = decision.targets[name];
      if (target !== undefined) this.manager.reconcile(name, target.desired, [], reason);
    }
    this.features = withActions(this.features, actionFractions(kind, action));

    const more = this.advance();
    const sim = this.sim;
    const truncated = more && sim.clock.now >= this.cutoff_s;
    const done = !more || truncated;
    const unfinished = truncated ? sim.arrived - sim.completed : 0;
    const { info, gpuSeconds } = this.closeInterval(unfinished);
    if (more) this.absorbObservation();
    this.finished = done;
    this.steps++;
    this.scaleEvents += info.scale_events;

    const agents = this.settings.agents;
    const breakdown = computeReward(info, this.rl.reward, this.thresholds);
    const rewards = agents.map((agent) =>
      this.rl.reward.variant === "origin-slo" && this.rl.agents === "split"
        ? computeReward(
            info,
            this.rl.reward,
            this.thresholds,
            agent.pools.map((p) => this.poolNames[p]!),
          ).reward
        : breakdown.reward,
    );
    this.rewardSum += breakdown.reward;
    if (!done) this.beginInterval(gpuSeconds);
    return {
      observation: this.view(this.allPools()),
      observations: agents.map((agent) => this.view(agent.pools)),
      reward: rewards[0] ?? breakdown.reward,
      rewards,
      done,
      truncated,
      info: { ...info, breakdown },
    };
  }

  /** Totals of the current (or just finished) episode. */
  summary(): EpisodeSummary {
    const sim = this.simulation;
    const gpu = this.scalingManager.gpuSecondsByState();
    return {
      steps: this.steps,
      reward: this.rewardSum,
      arrived: sim.arrived,
      completed: sim.completed,
      met: this.met,
      slo_attainment: sim.arrived > 0 ? this.met / sim.arrived : NaN,
      gpu_hours: (gpu.starting + gpu.active + gpu.draining) / 3600,
      scale_events: this.scaleEvents,
      sim_time_s: sim.clock.now,
    };
  }
}
