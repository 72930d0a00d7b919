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
import { DEFAULT_CAPACITY, deepFreeze, observationOf, poolView, replicaView } from "./builders.ts";

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
  return replicaView({
    id: spec.id,
    pool: spec.pool ?? "mixed",
    phase: spec.phase ?? "ready",
    createdAt_s,
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
  });
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
  return poolView(replicas, {
    name: spec.name ?? "mixed",
    role: spec.role ?? "mixed",
    ...(spec.desired === undefined ? {} : { desired: spec.desired }),
    min: spec.min ?? 0,
    max: spec.max ?? 100,
    capacity: { ...DEFAULT_CAPACITY, startupDelay_s: 30, maxKvTokens: 400_000 },
  });
}

export function observation(
  now: number,
  pools: readonly PoolView[],
  queue: Partial<QueueView> = {},
): Observation {
  return observationOf(now, pools, { traffic: { window_s: 60 }, queue });
}

export { deepFreeze };
