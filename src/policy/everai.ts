/**
 * EverAI's builtin autoscalers (autoscalers spec §5; `everai-autoscaler/builtin` v0.1.47):
 * `SimpleAutoScaler` (queue-driven, policy `everai`, alias `everai-simple`) and `FreeWorkerAutoScaler`
 * (idle-headroom-driven, policy `everai-free-worker`). Both share a fixed-step scale-up that waits for
 * any in-flight worker, and a per-worker idle timer for scale-down that removes the newest idle worker.
 *
 * How an `Observation` becomes EverAI's `Factors` (upstream gets them from its platform; we derive them):
 * - workers = the pool's replicas that are not draining (a draining replica is already being removed,
 *   as EverAI's REMOVE state is invisible to the builtin policies);
 *   - `starting` → Inflight;
 *   - `ready` with `num_requests_running + num_requests_waiting > 0` (or `concurrent_requests > 0`
 *     where only that gauge exists) → Busy;
 *   - `ready` and idle → Free;
 *   - `ready` but unscraped (metrics undefined) → Busy: a worker we cannot see is never called idle,
 *     so it is never a scale-down victim.
 * - `started_at` = createdAt_s, `last_service_time` = lastServedAt_s, `number_of_sessions` = sessions.
 * - queue.QueueDueBusy = `queue.dueBusy + queue.noReplica`: every request held at the gateway because no
 *   replica could take it. NotDispatch and QueueDueSession do not exist here and read 0.
 * - "now" is `observation.now`, never the wall clock.
 *
 * Pools: `pool: ""` (the default) runs the rule on every pool given at creation, independently, each pool
 * being one EverAI "app" that sees the shared gateway queue (EverAI knows nothing of prefill/decode, spec
 * §5.7). Naming a pool runs it on that pool only; the others keep their targets.
 *
 * Output: upstream returns actions (ScaleUp(count), ScaleDown(worker_id)); we return
 * `desired = non-draining replicas + scale-up count − victims` with the victims (newest first) to drain.
 */
import { z } from "zod";
import { UsageError, unknownNameMessage } from "../errors.ts";
import type { Decision, Observation, Policy, PoolDecision, PoolRole, PoolView } from "./types.ts";
import { GAUGES } from "./types.ts";

/** Upstream's `int()`-coerced integer arguments become non-negative integers validated at load time. */
const count = z.int().nonnegative();

const sharedShape = {
  /** Which pool to scale; "" = every pool given at creation, independently. */
  pool: z.string().default(""),
  min_workers: count.default(1),
  max_workers: count.default(1),
  scale_up_step: count.default(1),
  /** Seconds a Free worker must have been idle (since `last_service_time`) before it may be removed. */
  max_idle_time: z.number().nonnegative().default(120),
  /**
   * The `average(used_histories)` factors decorator (spec §5.2); 0 = off. The history is the summaries
   * this policy saw at its previous `average_histories` ticks, kept in its state.
   */
  average_histories: count.default(0),
  /**
   * true reproduces upstream's negative-slice defect (spec §5.7): with fewer Free workers than
   * `min_workers`, Python's `list[:k]` with k < 0 removes all but |k| idle workers, below the floor.
   * false (the fix) only clamps k at 0 and keeps upstream's floor on the Free count. We do not use
   * spec §5.7's `total − min`: it would remove the only Free worker while others are busy, and
   * FreeWorker would then scale straight back up (Free < min_free_workers).
   */
  upstream_negative_slice_bug: z.boolean().default(false),
  /** Seconds between decisions (the EverAI platform's cadence is not published; 2 s like KPA). */
  interval_s: z.number().positive().default(2),
};

function minBelowMax(config: { min_workers: number; max_workers: number }): boolean {
  return config.max_workers >= config.min_workers;
}
const minBelowMaxIssue = { message: "max_workers must be >= min_workers", path: ["max_workers"] };

/** `SimpleAutoScaler`: scale up by `scale_up_step` while more than `max_queue_size` requests wait for a busy worker. */
export const everaiConfigSchema = z
  .strictObject({ ...sharedShape, max_queue_size: count.default(1) })
  .refine(minBelowMax, minBelowMaxIssue);
export type EveraiConfig = z.output<typeof everaiConfigSchema>;

/** `FreeWorkerAutoScaler`: scale up by `scale_up_step` while fewer than `min_free_workers` workers are Free. */
export const everaiFreeWorkerConfigSchema = z
  .strictObject({ ...sharedShape, min_free_workers: count.default(1) })
  .refine(minBelowMax, minBelowMaxIssue);
export type EveraiFreeWorkerConfig = z.output<typeof everaiFreeWorkerConfigSchema>;

/** Registry names: the Simple policy answers to both. */
export const EVERAI_POLICY_NAMES = ["everai", "everai-simple"] as const;
export const EVERAI_FREE_WORKER_POLICY_NAME = "everai-free-worker";

// ---------------------------------------------------------------------------------------------------
// EverAI's vocabulary (model library v0.1.22, spec §5.1), kept so the rules read like the spec.

export type WorkerStatus = "Inflight" | "Free" | "Busy";

export interface EveraiWorker {
  readonly worker_id: string;
  readonly started_at: number;
  readonly last_service_time: number;
  readonly number_of_sessions: number;
  readonly status: WorkerStatus;
}

export interface WorkerSummary {
  readonly Inflight: number;
  readonly Free: number;
  readonly Busy: number;
}

export interface QueueSummary {
  readonly NotDispatch: number;
  readonly QueueDueBusy: number;
  readonly QueueDueSession: number;
}

export interface Factors {
  readonly workers: readonly EveraiWorker[];
  /** Null while the `average` decorator lacks history (spec §5.2). */
  readonly worker: WorkerSummary | null;
  readonly queue: QueueSummary | null;
}

/** Upstream's result in our terms: how many workers to add and which to remove (in that order). */
export interface EveraiActions {
  readonly scaleUp: number;
  readonly scaleDown: readonly string[];
  readonly why: string;
}

function workerStatus(replica: PoolView["replicas"][number]): WorkerStatus {
  if (replica.phase === "starting") return "Inflight";
  const gauges = replica.metrics?.gauges;
  if (gauges === undefined) return "Busy";
  const running = gauges[GAUGES.running];
  const waiting = gauges[GAUGES.waiting];
  const load =
    running !== undefined || waiting !== undefined
      ? (running ?? 0) + (waiting ?? 0)
      : gauges[GAUGES.concurrent];
  if (load === undefined) return "Busy";
  return load > 0 ? "Busy" : "Free";
}

function summarize(workers: readonly EveraiWorker[]): WorkerSummary {
  let Inflight = 0;
  let Free = 0;
  let Busy = 0;
  for (const worker of workers) {
    if (worker.status === "Inflight") Inflight++;
    else if (worker.status === "Free") Free++;
    else Busy++;
  }
  return { Inflight, Free, Busy };
}

/** The Factors EverAI's platform would hand the autoscaler for `pool` (mapping in the module comment). */
export function everaiFactors(observation: Observation, pool: PoolView): Factors {
  const workers: EveraiWorker[] = [];
  for (const replica of pool.replicas) {
    if (replica.phase === "draining") continue;
    workers.push({
      worker_id: replica.id,
      started_at: replica.createdAt_s,
      last_service_time: replica.lastServedAt_s,
      number_of_sessions: replica.sessions,
      status: workerStatus(replica),
    });
  }
  return {
    workers,
    worker: summarize(workers),
    queue: {
      NotDispatch: 0,
      QueueDueBusy: observation.queue.dueBusy + observation.queue.noReplica,
      QueueDueSession: 0,
    },
  };
}

interface ScaleArgs {
  readonly min_workers: number;
  readonly max_workers: number;
  readonly scale_up_step: number;
  readonly max_idle_time: number;
  readonly upstream_negative_slice_bug: boolean;
}

/** Spec §5.3: reach min first; otherwise `min(room, step)` when the policy's trigger fires; null = fall through. */
function scaleUpHelper(
  factors: Factors,
  args: ScaleArgs,
  trigger: { fires: boolean; why: string },
): EveraiActions | null {
  const n = factors.workers.length;
  if (n < args.min_workers) {
    return {
      scaleUp: args.min_workers - n,
      scaleDown: [],
      why: `${n} worker(s) < min_workers ${args.min_workers}`,
    };
  }
  if (trigger.fires) {
    const up = Math.min(args.max_workers - n, args.scale_up_step);
    if (up > 0) return { scaleUp: up, scaleDown: [], why: trigger.why };
  }
  return null;
}

/** Spec §5.6: idle, session-free, Free workers, newest first; the floor applies to the Free count. */
function idleScaleDown(factors: Factors, args: ScaleArgs, now: number, noUpWhy: string): EveraiActions {
  const newestFirst = factors.workers
    .map((worker, index) => ({ worker, index }))
    .sort((a, b) => b.worker.started_at - a.worker.started_at || a.index - b.index)
    .map(({ worker }) => worker);
  const candidates = newestFirst.filter(
    (w) =>
      w.number_of_sessions === 0 && w.status === "Free" && now - w.last_service_time >= args.max_idle_time,
  );
  const free = newestFirst.filter((w) => w.status === "Free").length;
  const k = Math.min(free - args.min_workers, candidates.length);
  // JS `slice(0, k)` with k < 0 drops the last |k| elements, exactly like Python's `list[:k]`.
  const victims = (
    args.upstream_negative_slice_bug ? candidates.slice(0, k) : candidates.slice(0, Math.max(0, k))
  ).map((w) => w.worker_id);
  const idle = `${candidates.length} idle ≥ ${args.max_idle_time}s, ${free} Free, min_workers ${args.min_workers}`;
  if (victims.length === 0) return { scaleUp: 0, scaleDown: [], why: `${noUpWhy}; no scale-down (${idle})` };
  const bug = k < 0 ? " [upstream negative-slice bug: below min_workers]" : "";
  return {
    scaleUp: 0,
    scaleDown: victims,
    why: `${noUpWhy}; scale down ${victims.join(", ")} (${idle})${bug}`,
  };
}

/** `SimpleAutoScaler.decide` on Factors (spec §5.4). */
export function simpleDecide(
  factors: Factors,
  args: ScaleArgs & { readonly max_queue_size: number },
  now: number,
): EveraiActions {
  const inflight = factors.workers.some((w) => w.status === "Inflight");
  const busyQueue = factors.queue?.QueueDueBusy ?? 0;
  const fires = factors.queue !== null && !inflight && busyQueue > args.max_queue_size;
  const why =
    factors.queue === null
      ? "queue unknown (average warming up)"
      : inflight
        ? `a worker is Inflight (QueueDueBusy ${busyQueue})`
        : `QueueDueBusy ${busyQueue} ${busyQueue > args.max_queue_size ? ">" : "≤"} max_queue_size ${args.max_queue_size}`;
  const up = scaleUpHelper(factors, args, { fires, why });
  if (up !== null) return up;
  return idleScaleDown(factors, args, now, fires ? `${why} but at max_workers ${args.max_workers}` : why);
}

/** `FreeWorkerAutoScaler.decide` on Factors (spec §5.5). */
export function freeWorkerDecide(
  factors: Factors,
  args: ScaleArgs & { readonly min_free_workers: number },
  now: number,
): EveraiActions {
  const inflight = factors.workers.some((w) => w.status === "Inflight");
  const free = factors.worker?.Free ?? 0;
  const fires = factors.worker !== null && !inflight && free < args.min_free_workers;
  const why =
    factors.worker === null
      ? "worker summary unknown (average warming up)"
      : inflight
        ? `a worker is Inflight (${free} Free)`
        : `${free} Free ${free < args.min_free_workers ? "<" : "≥"} min_free_workers ${args.min_free_workers}`;
  const up = scaleUpHelper(factors, args, { fires, why });
  if (up !== null) return up;
  return idleScaleDown(factors, args, now, fires ? `${why} but at max_workers ${args.max_workers}` : why);
}

// ---------------------------------------------------------------------------------------------------
// The `average(used_histories)` factors decorator over this policy's own past ticks.

/** One tick's summaries, as the decorator's history keeps them. */
export interface EveraiSample {
  readonly queueDueBusy: number;
  readonly inflight: number;
  readonly free: number;
  readonly busy: number;
}

/** Per pool, the last `average_histories` samples, most recent first. Plain JSON, replaced never mutated. */
export interface EveraiState {
  readonly history: Readonly<Record<string, readonly EveraiSample[]>>;
}

function averaged(factors: Factors, history: readonly EveraiSample[], used: number): Factors {
  if (used === 0) return factors;
  // Upstream: too few history entries → the summaries become None (spec §5.2).
  if (history.length < used || factors.queue === null || factors.worker === null) {
    return { ...factors, queue: null, worker: null };
  }
  const recent = history.slice(0, used);
  const mean = (current: number, pick: (s: EveraiSample) => number): number =>
    Math.floor(recent.reduce((sum, sample) => sum + pick(sample), current) / (used + 1));
  const inflightNow = factors.worker.Inflight;
  return {
    workers: factors.workers,
    queue: { ...factors.queue, QueueDueBusy: mean(factors.queue.QueueDueBusy, (s) => s.queueDueBusy) },
    worker: {
      Inflight: Math.max(
        mean(inflightNow, (s) => s.inflight),
        inflightNow > 0 ? 1 : 0,
      ),
      Free: mean(factors.worker.Free, (s) => s.free),
      Busy: mean(factors.worker.Busy, (s) => s.busy),
    },
  };
}

function sampleOf(factors: Factors): EveraiSample {
  return {
    queueDueBusy: factors.queue?.QueueDueBusy ?? 0,
    inflight: factors.worker?.Inflight ?? 0,
    free: factors.worker?.Free ?? 0,
    busy: factors.worker?.Busy ?? 0,
  };
}

// ---------------------------------------------------------------------------------------------------

type PoolSpec = readonly { name: string; role: PoolRole }[];

function managedPools(policyName: string, config: { pool: string }, pools: PoolSpec): string[] {
  if (config.pool === "") return pools.map((p) => p.name);
  if (!pools.some((p) => p.name === config.pool)) {
    const names = pools.map((p) => p.name);
    throw new UsageError(`${policyName}: pool: ${unknownNameMessage("pool", config.pool, names)}`);
  }
  return [config.pool];
}

function everaiPolicy(
  name: string,
  config: EveraiConfig | EveraiFreeWorkerConfig,
  pools: PoolSpec,
  rule: (factors: Factors, now: number) => EveraiActions,
): Policy<EveraiState> {
  const managed = managedPools(name, config, pools);
  const used = config.average_histories;
  return {
    name,
    interval_s: config.interval_s,
    init: () => ({ history: {} }),
    decide(observation, state) {
      const targets: Record<string, PoolDecision> = {};
      const reasons: string[] = [];
      const history: Record<string, readonly EveraiSample[]> = { ...state.history };
      for (const poolName of managed) {
        const view = observation.pools.find((p) => p.name === poolName);
        if (view === undefined) {
          reasons.push(`${name} ${poolName}: pool not observed; holding`);
          continue;
        }
        const raw = everaiFactors(observation, view);
        const past = state.history[poolName] ?? [];
        const actions = rule(averaged(raw, past, used), observation.now);
        if (used > 0) history[poolName] = [sampleOf(raw), ...past].slice(0, used);
        const n = raw.workers.length;
        const s = raw.worker;
        const fleet = `${n} worker(s) [${s?.Inflight ?? 0} Inflight, ${s?.Busy ?? 0} Busy, ${s?.Free ?? 0} Free]`;
        if (actions.scaleUp === 0 && actions.scaleDown.length === 0) {
          reasons.push(`${name} ${poolName}: ${fleet}; hold: ${actions.why}`);
          continue;
        }
        const desired = n + actions.scaleUp - actions.scaleDown.length;
        targets[poolName] =
          actions.scaleDown.length > 0 ? { desired, victims: actions.scaleDown } : { desired };
        const verb = actions.scaleUp > 0 ? `scale up ${actions.scaleUp}: ${actions.why}` : actions.why;
        reasons.push(`${name} ${poolName}: ${fleet}; ${verb} → desired ${desired}`);
      }
      return { decision: { targets, reasons } satisfies Decision, state: { history } };
    },
  };
}

/** EverAI `SimpleAutoScaler` as a Policy (name `everai`). Throws when `config.pool` names no pool. */
export function createEveraiPolicy(config: EveraiConfig, pools: PoolSpec): Policy<EveraiState> {
  return everaiPolicy("everai", config, pools, (factors, now) => simpleDecide(factors, config, now));
}

/** EverAI `FreeWorkerAutoScaler` as a Policy (name `everai-free-worker`). */
export function createEveraiFreeWorkerPolicy(
  config: EveraiFreeWorkerConfig,
  pools: PoolSpec,
): Policy<EveraiState> {
  return everaiPolicy(EVERAI_FREE_WORKER_POLICY_NAME, config, pools, (factors, now) =>
    freeWorkerDecide(factors, config, now),
  );
}
