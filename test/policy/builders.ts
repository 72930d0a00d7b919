/**
 * The one set of Observation builders every policy test shares: each fills the fields a test does
 * not care about with neutral defaults (ready, idle, scraped, created at 0). Test files wrap these
 * in the vocabulary of the policy they test (workers, replicas with gauges, ...).
 */
import type {
  Observation,
  PoolCapacity,
  PoolView,
  QueueView,
  ReplicaView,
  TrafficWindow,
} from "../../src/policy/types.ts";

export const DEFAULT_CAPACITY: PoolCapacity = {
  sku: "dgx-h100",
  gpusPerReplica: 8,
  costPerReplicaHour_usd: 10,
  startupDelay_s: 60,
  maxBatchSize: 256,
  maxBatchTokens: 8192,
  maxKvTokens: 100_000,
};

/** A ready replica of pool "mixed", scraped with no metrics, unless overridden. */
export function replicaView(overrides: Partial<ReplicaView> & { readonly id: string }): ReplicaView {
  const createdAt_s = overrides.createdAt_s ?? 0;
  return {
    pool: "mixed",
    phase: "ready",
    phaseSince_s: createdAt_s,
    createdAt_s,
    sku: DEFAULT_CAPACITY.sku,
    gpus: DEFAULT_CAPACITY.gpusPerReplica,
    costPerHour_usd: DEFAULT_CAPACITY.costPerReplicaHour_usd,
    restarts: 0,
    lastServedAt_s: createdAt_s,
    sessions: 0,
    metrics: { gauges: {}, counters: {}, histograms: {} },
    ...overrides,
  };
}

/** A pool whose `desired` defaults to its non-draining replicas. */
export function poolView(replicas: readonly ReplicaView[], overrides: Partial<PoolView> = {}): PoolView {
  return {
    name: "mixed",
    role: "mixed",
    desired: replicas.filter((replica) => replica.phase !== "draining").length,
    min: 0,
    max: 100,
    replicas,
    capacity: DEFAULT_CAPACITY,
    ...overrides,
  };
}

export function observationOf(
  now: number,
  pools: readonly PoolView[],
  extra: {
    readonly traffic?: Partial<TrafficWindow>;
    readonly queue?: Partial<QueueView>;
    readonly external?: Readonly<Record<string, number>>;
  } = {},
): Observation {
  return {
    now,
    pools,
    traffic: { window_s: 2, arrivals: 0, promptTokens: 0, outputTokens: 0, completions: 0, ...extra.traffic },
    queue: { dueBusy: 0, noReplica: 0, oldestAge_s: 0, ...extra.queue },
    external: extra.external ?? {},
  };
}

/** Freezes an object graph, so a policy that mutates its input throws in strict mode. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
