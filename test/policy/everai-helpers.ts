/**
 * Builders for policy tests: replicas, pools and observations with only the fields a test cares about
 * spelled out. Everything else gets a neutral default (ready, idle, scraped, created at 0).
 */
import type {
  Observation,
  PoolRole,
  PoolView,
  QueueView,
  ReplicaPhase,
  ReplicaView,
} from "../../src/policy/types.ts";
import { GAUGES } from "../../src/policy/types.ts";

export interface ReplicaSpec {
  readonly id: string;
  readonly pool?: string;
  readonly phase?: ReplicaPhase;
  readonly createdAt_s?: number;
  /** Defaults to createdAt_s (never served). */
  readonly lastServedAt_s?: number;
  readonly sessions?: number;
  readonly running?: number;
  readonly waiting?: number;
  readonly kv?: number;
  readonly pendingPrefill?: number;
  /** true = the scrape failed (metrics undefined). */
  readonly unscraped?: boolean;
}

export function replica(spec: ReplicaSpec): ReplicaView {
  const createdAt_s = spec.createdAt_s ?? 0;
  return {
    id: spec.id,
    pool: spec.pool ?? "mixed",
    phase: spec.phase ?? "ready",
    phaseSince_s: createdAt_s,
    createdAt_s,
    sku: "dgx-h100",
    gpus: 8,
    costPerHour_usd: 10,
    restarts: 0,
    lastServedAt_s: spec.lastServedAt_s ?? createdAt_s,
    sessions: spec.sessions ?? 0,
    metrics: spec.unscraped
      ? undefined
      : {
          gauges: {
            [GAUGES.running]: spec.running ?? 0,
            [GAUGES.waiting]: spec.waiting ?? 0,
            [GAUGES.kvCacheUsage]: spec.kv ?? 0,
            [GAUGES.pendingPrefillTokens]: spec.pendingPrefill ?? 0,
          },
          counters: {},
          histograms: {},
        },
  };
}

/** A ready replica with one running request (EverAI: Busy). */
export function busy(id: string, createdAt_s = 0): ReplicaView {
  return replica({ id, createdAt_s, running: 1 });
}

/** A ready, idle replica that last served at `lastServedAt_s` (EverAI: Free). */
export function free(id: string, lastServedAt_s = 0, createdAt_s = 0): ReplicaView {
  return replica({ id, createdAt_s, lastServedAt_s });
}

export interface PoolSpec {
  readonly name?: string;
  readonly role?: PoolRole;
  readonly min?: number;
  readonly max?: number;
  /** Defaults to the non-draining replica count. */
  readonly desired?: number;
  readonly replicas?: readonly ReplicaView[];
}

export function pool(spec: PoolSpec = {}): PoolView {
  const replicas = spec.replicas ?? [];
  return {
    name: spec.name ?? "mixed",
    role: spec.role ?? "mixed",
    desired: spec.desired ?? replicas.filter((r) => r.phase !== "draining").length,
    min: spec.min ?? 0,
    max: spec.max ?? 100,
    replicas,
    capacity: {
      sku: "dgx-h100",
      gpusPerReplica: 8,
      costPerReplicaHour_usd: 10,
      startupDelay_s: 30,
      maxBatchSize: 256,
      maxBatchTokens: 8192,
      maxKvTokens: 400_000,
    },
  };
}

export function observation(
  now: number,
  pools: readonly PoolView[],
  queue: Partial<QueueView> = {},
): Observation {
  return {
    now,
    pools,
    traffic: { window_s: 60, arrivals: 0, promptTokens: 0, outputTokens: 0, completions: 0 },
    queue: {
      dueBusy: queue.dueBusy ?? 0,
      noReplica: queue.noReplica ?? 0,
      oldestAge_s: queue.oldestAge_s ?? 0,
    },
    external: {},
  };
}

/** Freezes a value and everything it holds, so an in-place mutation throws in strict mode. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
