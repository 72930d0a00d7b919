import {
  GAUGES,
  HISTOGRAMS,
  type HistogramSnapshot,
  type Observation,
  type PoolRole,
  type PoolView,
} from "../policy/types.ts";

/**
 * RL state features, computed from an `Observation` only (never from the simulator), so a trained
 * policy runs unchanged in simulation, in training and in live mode. Everything here is a pure
 * function over plain-JSON state.
 *
 * The fork's features (spec §5.3) with its defects fixed:
 * - load features (gauges, utilization, KV use) average over READY replicas only; starting and
 *   draining replicas are counted in their own features (seed 002: "只统计活跃实例");
 * - every quantity is a difference against this policy's own previous observation (kept in the
 *   feature state), never a reset-on-read counter shared with another collector, so the token agent
 *   sees the same traffic as the prompt agent (spec §8.4 #28);
 * - recent SLO attainment comes from the replicas' TTFT histograms (the share of first tokens in the
 *   window slower than `ttft_slow_s`) instead of latencies normalized against a hard-coded
 *   bloom-176b reference (#29); `wait_time` has the right sign (age of the oldest held request).
 * Normalizations map typical values into about [0, 1] with logs for heavy-tailed counts.
 */

/** Feature settings; stored in every checkpoint so a policy sees exactly what it was trained on. */
export interface FeatureSpec {
  /** Pools in vector order (name and role). */
  readonly pools: readonly { readonly name: string; readonly role: PoolRole }[];
  /** Frames stacked, oldest first (the fork's `stack_size`). */
  readonly stack: number;
  /** Replica counts are divided by this. */
  readonly count_scale: number;
  /** Arrivals per second that map to 1 (log scale). */
  readonly rate_scale: number;
  /** A first token slower than this (seconds, snapped up to a histogram bucket) counts as slow. */
  readonly ttft_slow_s: number;
}

/** Per-pool feature names, in vector order. */
export const POOL_FEATURES = [
  "ready",
  "starting",
  "draining",
  "concurrent_per_ready",
  "waiting_per_ready",
  "kv_cache_usage",
  "gpu_utilization",
  "pending_prefill_tokens_per_ready",
  "ttft_mean",
  "ttft_slow_fraction",
  "itl_mean",
  "arrivals_per_replica",
  "tokens_per_replica",
] as const;

/** Features shared by every agent, in vector order (after the pools); then one last action per pool. */
export const SHARED_FEATURES = [
  "arrival_rate",
  "arrival_rate_delta",
  "prompt_tokens_per_arrival",
  "output_tokens_per_completion",
  "prompt_token_rate",
  "queue",
  "queue_delta",
  "oldest_wait",
] as const;

/** Counters remembered per replica, to turn cumulative histograms into per-window values. */
type ReplicaMemory = [ttftCount: number, ttftSum: number, ttftSlow: number, itlCount: number, itlSum: number];

/** What the extractor remembers between decisions (plain JSON). */
export interface FeatureState {
  /** Last `stack` frames, oldest first (zeros before the first decisions). */
  readonly frames: readonly (readonly number[])[];
  readonly replicas: Readonly<Record<string, ReplicaMemory>>;
  readonly lastRate: number;
  readonly lastQueue: number;
  /** The agent's last action per pool, as a fraction of the action step (in [-1, 1]). */
  readonly lastActions: readonly number[];
}

export function frameSize(spec: FeatureSpec): number {
  return spec.pools.length * POOL_FEATURES.length + SHARED_FEATURES.length + spec.pools.length;
}

export function initialFeatureState(spec: FeatureSpec): FeatureState {
  const size = frameSize(spec);
  return {
    frames: Array.from({ length: spec.stack }, () => new Array<number>(size).fill(0)),
    replicas: {},
    lastRate: 0,
    lastQueue: 0,
    lastActions: new Array<number>(spec.pools.length).fill(0),
  };
}

const LOG_64 = Math.log1p(64);
const LOG_TOKENS = Math.log1p(65536);
const LOG_QUEUE = Math.log1p(1000);
const LOG_PROMPT = Math.log1p(8192);
const LOG_OUTPUT = Math.log1p(2048);
const LOG_TOKEN_RATE = Math.log1p(100_000);
const LOG_LATENCY = Math.log1p(1000);

const logScaled = (value: number, logScale: number): number => Math.log1p(Math.max(0, value)) / logScale;
const signedLog = (value: number, logScale: number): number =>
  (Math.sign(value) * Math.log1p(Math.abs(value))) / logScale;

/** Observations at or below `le[i]` for the first bucket bound >= threshold. */
function countAtOrBelow(histogram: HistogramSnapshot, threshold: number): number {
  for (let i = 0; i < histogram.le.length; i++)
    if (histogram.le[i]! >= threshold - 1e-12) return histogram.cumulative[i]!;
  return histogram.count;
}

function poolFeatures(
  pool: PoolView,
  spec: FeatureSpec,
  previous: Readonly<Record<string, ReplicaMemory>>,
  memory: Record<string, ReplicaMemory>,
  arrivalRate: number,
  tokenRate: number,
  out: number[],
): void {
  let ready = 0;
  let starting = 0;
  let draining = 0;
  let scraped = 0;
  let concurrent = 0;
  let waiting = 0;
  let kv = 0;
  let utilization = 0;
  let pending = 0;
  let ttftCount = 0;
  let ttftSum = 0;
  let ttftSlow = 0;
  let itlCount = 0;
  let itlSum = 0;
  for (const replica of pool.replicas) {
    if (replica.phase === "starting") {
      starting++;
      continue;
    }
    if (replica.phase === "draining") draining++;
    else ready++;
    const metrics = replica.metrics;
    if (metrics === undefined) continue; // missing, never zero
    // Latency windows count every replica that served (draining ones finish requests too).
    const ttft = metrics.histograms[HISTOGRAMS.ttft];
    const itl = metrics.histograms[HISTOGRAMS.itl];
    const now: ReplicaMemory = [
      ttft?.count ?? 0,
      ttft?.sum ?? 0,
      ttft === undefined ? 0 : ttft.count - countAtOrBelow(ttft, spec.ttft_slow_s),
      itl?.count ?? 0,
      itl?.sum ?? 0,
    ];
    const before = previous[replica.id];
    // A replica seen for the first time contributes what it did since it started.
    ttftCount += now[0] - (before?.[0] ?? 0);
    ttftSum += now[1] - (before?.[1] ?? 0);
    ttftSlow += now[2] - (before?.[2] ?? 0);
    itlCount += now[3] - (before?.[3] ?? 0);
    itlSum += now[4] - (before?.[4] ?? 0);
    memory[replica.id] = now;
    if (replica.phase !== "ready") continue;
    scraped++;
    const gauges = metrics.gauges;
    concurrent += gauges[GAUGES.concurrent] ?? 0;
    waiting += gauges[GAUGES.waiting] ?? 0;
    kv += gauges[GAUGES.kvCacheUsage] ?? 0;
    utilization += (gauges[GAUGES.gpuUtilization] ?? 0) / 100;
    pending += gauges[GAUGES.pendingPrefillTokens] ?? 0;
  }
  const perScraped = (value: number): number => (scraped > 0 ? value / scraped : 0);
  const serving = Math.max(1, ready + starting);
  out.push(
    Math.min(ready / spec.count_scale, 2),
    Math.min(starting / spec.count_scale, 2),
    Math.min(draining / spec.count_scale, 2),
    logScaled(perScraped(concurrent), LOG_64),
    logScaled(perScraped(waiting), LOG_64),
    Math.min(1, Math.max(0, perScraped(kv))),
    Math.min(1, Math.max(0, perScraped(utilization))),
    logScaled(perScraped(pending), LOG_TOKENS),
    ttftCount > 0 ? logScaled((ttftSum / ttftCount) * 100, LOG_LATENCY) : 0,
    ttftCount > 0 ? Math.min(1, Math.max(0, ttftSlow / ttftCount)) : 0,
    itlCount > 0 ? logScaled((itlSum / itlCount) * 1000, LOG_LATENCY) : 0,
    logScaled(arrivalRate / serving, Math.log1p(spec.rate_scale)),
    logScaled(tokenRate / serving, LOG_TOKEN_RATE),
  );
}

/**
 * One decision's frame plus the updated state (the frame is appended to the stack; the last actions
 * stay until `withActions` records the new ones).
 */
export function extractFeatures(
  observation: Observation,
  state: FeatureState,
  spec: FeatureSpec,
): { frame: number[]; state: FeatureState } {
  const traffic = observation.traffic;
  const window = traffic.window_s > 0 ? traffic.window_s : 0;
  const arrivalRate = window > 0 ? traffic.arrivals / window : 0;
  const promptRate = window > 0 ? traffic.promptTokens / window : 0;
  const outputRate = window > 0 ? traffic.outputTokens / window : 0;
  const queue = observation.queue.dueBusy + observation.queue.noReplica;
  const memory: Record<string, ReplicaMemory> = {};
  const frame: number[] = [];
  for (const wanted of spec.pools) {
    const pool = observation.pools.find((candidate) => candidate.name === wanted.name);
    if (pool === undefined) {
      for (let i = 0; i < POOL_FEATURES.length; i++) frame.push(0);
      continue;
    }
    const tokenRate = wanted.role === "decode" ? outputRate : promptRate;
    poolFeatures(pool, spec, state.replicas, memory, arrivalRate, tokenRate, frame);
  }
  const rateScale = Math.log1p(spec.rate_scale);
  frame.push(
    logScaled(arrivalRate, rateScale),
    signedLog(arrivalRate - state.lastRate, rateScale),
    traffic.arrivals > 0 ? logScaled(traffic.promptTokens / traffic.arrivals, LOG_PROMPT) : 0,
    traffic.completions > 0 ? logScaled(traffic.outputTokens / traffic.completions, LOG_OUTPUT) : 0,
    logScaled(promptRate, LOG_TOKEN_RATE),
    logScaled(queue, LOG_QUEUE),
    signedLog(queue - state.lastQueue, LOG_QUEUE),
    Math.tanh(observation.queue.oldestAge_s / 10),
  );
  for (const action of state.lastActions) frame.push(action);
  const frames = [...state.frames.slice(1), frame];
  return {
    frame,
    state: {
      frames,
      replicas: memory,
      lastRate: arrivalRate,
      lastQueue: queue,
      lastActions: state.lastActions,
    },
  };
}

/** Records the actions taken (fractions of the action step, per pool) for the next frame. */
export function withActions(state: FeatureState, actions: readonly number[]): FeatureState {
  return { ...state, lastActions: actions.map((action) => Math.max(-1, Math.min(1, action))) };
}

/**
 * An agent's input vector from the stacked frames: for each frame (oldest first) the features of the
 * agent's pools, then the shared features and last actions. A joint agent lists every pool; the
 * prompt agent of a split setup sees the prefill pool, the token agent the decode pool: each its own
 * pool's features (the fork's token agent saw the prompt side's, spec §8.4 #28).
 */
export function agentView(
  frames: readonly (readonly number[])[],
  spec: FeatureSpec,
  poolIndices: readonly number[],
  out?: Float64Array,
): Float64Array {
  const perPool = POOL_FEATURES.length;
  const sharedStart = spec.pools.length * perPool;
  const sharedSize = SHARED_FEATURES.length + spec.pools.length;
  const size = (poolIndices.length * perPool + sharedSize) * frames.length;
  const vector = out ?? new Float64Array(size);
  let k = 0;
  for (const frame of frames) {
    for (const pool of poolIndices)
      for (let i = 0; i < perPool; i++) vector[k++] = frame[pool * perPool + i] ?? 0;
    for (let i = 0; i < sharedSize; i++) vector[k++] = frame[sharedStart + i] ?? 0;
  }
  return vector;
}

export function agentViewSize(spec: FeatureSpec, poolCount: number): number {
  return (poolCount * POOL_FEATURES.length + SHARED_FEATURES.length + spec.pools.length) * spec.stack;
}

/** Names of an agent's inputs, for docs and debugging (`frame-1.prefill.ready`, ...). */
export function agentViewNames(spec: FeatureSpec, poolIndices: readonly number[]): string[] {
  const names: string[] = [];
  for (let f = 0; f < spec.stack; f++) {
    const age = spec.stack - 1 - f;
    const prefix = age === 0 ? "now" : `t-${age}`;
    for (const pool of poolIndices)
      for (const feature of POOL_FEATURES) names.push(`${prefix}.${spec.pools[pool]!.name}.${feature}`);
    for (const feature of SHARED_FEATURES) names.push(`${prefix}.${feature}`);
    for (const pool of spec.pools) names.push(`${prefix}.last_action.${pool.name}`);
  }
  return names;
}
