/**
 * Builders for the Kthena policy tests: replicas with just the gauges / histograms a test names,
 * pools and observations. Everything else gets a neutral default (ready, scraped, created at 0).
 */
import type {
  HistogramSnapshot,
  Observation,
  PoolRole,
  PoolView,
  ReplicaPhase,
  ReplicaView,
} from "../../src/policy/types.ts";
import { DEFAULT_CAPACITY, deepFreeze, observationOf, poolView, replicaView } from "./builders.ts";

export interface KthenaReplicaSpec {
  readonly id: string;
  readonly pool?: string;
  readonly phase?: ReplicaPhase;
  readonly gauges?: Readonly<Record<string, number>>;
  readonly counters?: Readonly<Record<string, number>>;
  readonly histograms?: Readonly<Record<string, HistogramSnapshot>>;
  readonly restarts?: number;
  readonly createdAt_s?: number;
  /** true = the scrape failed (metrics undefined). */
  readonly unscraped?: boolean;
}

export function kreplica(spec: KthenaReplicaSpec): ReplicaView {
  return replicaView({
    id: spec.id,
    pool: spec.pool ?? "mixed",
    phase: spec.phase ?? "ready",
    createdAt_s: spec.createdAt_s ?? 0,
    restarts: spec.restarts ?? 0,
    metrics: spec.unscraped
      ? undefined
      : { gauges: spec.gauges ?? {}, counters: spec.counters ?? {}, histograms: spec.histograms ?? {} },
  });
}

/** `count` ready replicas of `pool`, each with the same gauges. */
export function uniform(
  pool: string,
  count: number,
  gauges: Readonly<Record<string, number>>,
): ReplicaView[] {
  return Array.from({ length: count }, (_, index) => kreplica({ id: `${pool}-${index}`, pool, gauges }));
}

export interface KthenaPoolSpec {
  readonly name: string;
  readonly role?: PoolRole;
  readonly min?: number;
  readonly max?: number;
  /** Defaults to the non-draining replica count. */
  readonly desired?: number;
  readonly replicas?: readonly ReplicaView[];
  readonly costPerReplicaHour_usd?: number;
}

export function kpool(spec: KthenaPoolSpec): PoolView {
  return poolView(spec.replicas ?? [], {
    name: spec.name,
    role: spec.role ?? "mixed",
    ...(spec.desired === undefined ? {} : { desired: spec.desired }),
    min: spec.min ?? 0,
    max: spec.max ?? 100,
    capacity: { ...DEFAULT_CAPACITY, costPerReplicaHour_usd: spec.costPerReplicaHour_usd ?? 10 },
  });
}

export function kobservation(
  now: number,
  pools: readonly PoolView[],
  external: Readonly<Record<string, number>> = {},
): Observation {
  return observationOf(now, pools, { traffic: { window_s: 15 }, external });
}

/** A cumulative histogram over `le` (last +Infinity) from per-bucket counts. */
export function histogramOf(le: readonly number[], counts: readonly number[]): HistogramSnapshot {
  const cumulative: number[] = [];
  let running = 0;
  for (const count of counts) cumulative.push((running += count));
  return { le, cumulative, count: running, sum: 0 };
}

export { deepFreeze };
