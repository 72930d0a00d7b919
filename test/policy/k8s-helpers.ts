/** Observation builders for the HPA and KPA policy tests. */
import type {
  Observation,
  PoolCapacity,
  PoolView,
  QueueView,
  ReplicaPhase,
  ReplicaView,
  TrafficWindow,
} from "../../src/policy/types.ts";
import { GAUGES } from "../../src/policy/types.ts";

const capacity: PoolCapacity = {
  sku: "dgx-h100",
  gpusPerReplica: 8,
  costPerReplicaHour_usd: 98,
  startupDelay_s: 60,
  maxBatchSize: 512,
  maxBatchTokens: 2048,
  maxKvTokens: 1_000_000,
};

/** A replica; `gauges: undefined` is one whose scrape failed (metrics missing). */
export function replica(
  id: string,
  phase: ReplicaPhase,
  gauges: Record<string, number> | undefined,
  overrides: Partial<ReplicaView> = {},
): ReplicaView {
  return {
    id,
    pool: "decode",
    phase,
    phaseSince_s: 0,
    createdAt_s: 0,
    sku: capacity.sku,
    gpus: capacity.gpusPerReplica,
    costPerHour_usd: capacity.costPerReplicaHour_usd,
    restarts: 0,
    lastServedAt_s: 0,
    sessions: 0,
    metrics: gauges === undefined ? undefined : { gauges, counters: {}, histograms: {} },
    ...overrides,
  };
}

/** Ready replicas reporting `values` of one gauge (default `concurrent_requests`). */
export function readyReplicas(values: readonly number[], gauge: string = GAUGES.concurrent): ReplicaView[] {
  return values.map((value, index) => replica(`r${index}`, "ready", { [gauge]: value }));
}

/** A pool whose `desired` defaults to its non-draining replicas. */
export function pool(replicas: readonly ReplicaView[], overrides: Partial<PoolView> = {}): PoolView {
  return {
    name: "decode",
    role: "decode",
    desired: replicas.filter((r) => r.phase !== "draining").length,
    min: 1,
    max: 100,
    replicas,
    capacity,
    ...overrides,
  };
}

export function observation(
  now: number,
  pools: readonly PoolView[],
  extra: {
    traffic?: Partial<TrafficWindow>;
    queue?: Partial<QueueView>;
    external?: Record<string, number>;
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

/** Freezes an object graph so a policy that mutates its input throws in strict mode. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
