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
import { deepFreeze, observationOf, poolView, replicaView } from "./builders.ts";

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
  return replicaView({
    id,
    pool: "decode",
    phase,
    phaseSince_s: 0,
    lastServedAt_s: 0,
    costPerHour_usd: capacity.costPerReplicaHour_usd,
    metrics: gauges === undefined ? undefined : { gauges, counters: {}, histograms: {} },
    ...overrides,
  });
}

/** Ready replicas reporting `values` of one gauge (default `concurrent_requests`). */
export function readyReplicas(values: readonly number[], gauge: string = GAUGES.concurrent): ReplicaView[] {
  return values.map((value, index) => replica(`r${index}`, "ready", { [gauge]: value }));
}

/** A pool whose `desired` defaults to its non-draining replicas. */
export function pool(replicas: readonly ReplicaView[], overrides: Partial<PoolView> = {}): PoolView {
  return poolView(replicas, { name: "decode", role: "decode", min: 1, max: 100, capacity, ...overrides });
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
  return observationOf(now, pools, extra);
}

export { deepFreeze };
