/**
 * The one seam of splitscale: an autoscaling policy is a pure, clock-injected state machine.
 *
 * `decide(observation, state)` sees only what a controller can honestly know at `observation.now`
 * (replicas and their phases, scraped gauges/counters/histograms, recent traffic, the gateway queue)
 * and returns the desired replicas per pool. It never reads the simulator, the wall clock or a
 * random source it was not given, so the same object runs in simulation, RL training and live mode,
 * and every decision can be replayed from a logged (observation, state) pair.
 *
 * Times are seconds on the caller's clock (simulated seconds in `simulate`, Unix seconds in `serve`).
 */

/** What a pool's replicas do: prefill-only, decode-only, or both (co-located / aggregated). */
export type PoolRole = "prefill" | "decode" | "mixed";

/**
 * Lifecycle phase of a replica as a controller sees it: `starting` (requested, loading weights, not
 * yet routable), `ready` (receives work), `draining` (no new work, finishing what it has).
 */
export type ReplicaPhase = "starting" | "ready" | "draining";

/** Well-known gauge names (per replica). Live mode maps vLLM/SGLang names onto these. */
export const GAUGES = {
  /** Requests in the running batch (vllm:num_requests_running). */
  running: "num_requests_running",
  /** Requests queued on the replica (vllm:num_requests_waiting). */
  waiting: "num_requests_waiting",
  /** running + waiting (Kthena's concurrent_requests). */
  concurrent: "concurrent_requests",
  /** KV-cache memory in use, 0..1 (vllm:kv_cache_usage_perc). */
  kvCacheUsage: "kv_cache_usage_perc",
  /** Busy fraction of the GPU over the last scrape interval, in percent 0..100. */
  gpuUtilization: "gpu_utilization",
  /** Prompt tokens queued or in prefill on the replica. */
  pendingPrefillTokens: "pending_prefill_tokens",
} as const;

/** Well-known counter names (per replica, cumulative since the replica started). */
export const COUNTERS = {
  promptTokens: "prompt_tokens_total",
  generationTokens: "generation_tokens_total",
  requestsCompleted: "request_success_total",
} as const;

/** Well-known histogram names (per replica, cumulative since the replica started). */
export const HISTOGRAMS = {
  ttft: "time_to_first_token_seconds",
  itl: "inter_token_latency_seconds",
  e2e: "e2e_request_latency_seconds",
} as const;

/** A Prometheus-style cumulative histogram: `cumulative[i]` observations were <= `le[i]`; the last `le` is +Infinity. */
export interface HistogramSnapshot {
  readonly le: readonly number[];
  readonly cumulative: readonly number[];
  readonly count: number;
  readonly sum: number;
}

/** One replica's scraped metrics. A replica whose scrape failed or went stale has `metrics: undefined`. */
export interface ReplicaMetrics {
  readonly gauges: Readonly<Record<string, number>>;
  readonly counters: Readonly<Record<string, number>>;
  readonly histograms: Readonly<Record<string, HistogramSnapshot>>;
}

export interface ReplicaView {
  readonly id: string;
  readonly pool: string;
  readonly phase: ReplicaPhase;
  /** When the replica entered its current phase. */
  readonly phaseSince_s: number;
  /** When the replica was requested (cost starts here). */
  readonly createdAt_s: number;
  /** Hardware type (server SKU), for heterogeneous and cost-aware policies. */
  readonly sku: string;
  readonly gpus: number;
  readonly costPerHour_usd: number;
  /** Times this replica crashed and restarted (0 in simulation). */
  readonly restarts: number;
  /** Last time the replica finished or was serving a request (its creation time if never). */
  readonly lastServedAt_s: number;
  /** Sticky sessions pinned to the replica (EverAI); 0 where sessions do not exist. */
  readonly sessions: number;
  /** Undefined when the metrics could not be scraped (missing, never zero). */
  readonly metrics: ReplicaMetrics | undefined;
}

/** Static facts about a pool that capacity-planning policies need. */
export interface PoolCapacity {
  readonly sku: string;
  readonly gpusPerReplica: number;
  readonly costPerReplicaHour_usd: number;
  /** Expected seconds from a scale-up request until the replica is ready. */
  readonly startupDelay_s: number;
  /** Continuous-batching limits of one replica. */
  readonly maxBatchSize: number;
  readonly maxBatchTokens: number;
  /** KV-cache tokens one replica can hold after its weights. */
  readonly maxKvTokens: number;
}

export interface PoolView {
  readonly name: string;
  readonly role: PoolRole;
  /** The pool's current target (what the actuator was last told); starting replicas included. */
  readonly desired: number;
  readonly min: number;
  readonly max: number;
  readonly replicas: readonly ReplicaView[];
  readonly capacity: PoolCapacity;
}

/** Traffic at the front door over the last `window_s` seconds (what a gateway can count). */
export interface TrafficWindow {
  readonly window_s: number;
  readonly arrivals: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  readonly completions: number;
}

/** Requests held in front of the replicas (the gateway or scheduler queue), split by reason. */
export interface QueueView {
  /** Waiting because every ready replica is busy or full (EverAI's QueueDueBusy). */
  readonly dueBusy: number;
  /** Waiting because no replica is ready at all (scale from zero). */
  readonly noReplica: number;
  /** Age of the oldest held request in seconds (0 when empty). */
  readonly oldestAge_s: number;
}

export interface Observation {
  readonly now: number;
  readonly pools: readonly PoolView[];
  readonly traffic: TrafficWindow;
  readonly queue: QueueView;
  /** External metrics by name (a Prometheus query, a forecast); totals, not per replica. */
  readonly external: Readonly<Record<string, number>>;
}

export interface PoolDecision {
  /** Desired replicas including those starting; the manager clamps to the pool's [min, max]. */
  readonly desired: number;
  /** Replica ids to drain first when `desired` is below the current count. */
  readonly victims?: readonly string[];
}

export interface Decision {
  /** Pools absent from the map keep their current target. */
  readonly targets: Readonly<Record<string, PoolDecision>>;
  /** Human-readable reasons, logged with every decision. */
  readonly reasons: readonly string[];
}

export interface Policy<S = unknown> {
  readonly name: string;
  /** How often this policy wants to be asked, in seconds (its upstream tick: HPA 15, KPA 2, ...). */
  readonly interval_s: number;
  init(now: number): S;
  decide(observation: Observation, state: S): { decision: Decision; state: S };
}

/** A decision that changes nothing. */
export function holdDecision(reason: string): Decision {
  return { targets: {}, reasons: [reason] };
}

/** Replicas of a pool in the given phases. */
export function replicasIn(pool: PoolView, ...phases: ReplicaPhase[]): ReplicaView[] {
  return pool.replicas.filter((replica) => phases.includes(replica.phase));
}

/** Replicas that count towards a pool's size: starting and ready (draining ones are on their way out). */
export function activeCount(pool: PoolView): number {
  let count = 0;
  for (const replica of pool.replicas) if (replica.phase !== "draining") count++;
  return count;
}

export function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}
