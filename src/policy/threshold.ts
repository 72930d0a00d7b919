/**
 * `threshold`: the seeds' example autoscaling scheduler (splitwise spec §3.9, `AutoScalingScheduler`),
 * lifted out of the scheduler into a policy and generalized from its two pools to any pool by role.
 *
 * Per pool and tick, a load signal over the ready replicas that could be scraped:
 * - prefill: Σ `pending_prefill_tokens` / (replicas × `prefill_tokens_per_replica`);
 * - decode: mean `kv_cache_usage_perc` (upstream divides Σ used by Σ capacity, the same for equal
 *   replicas; ours excludes the weights, which upstream counted as used memory);
 * - mixed: the larger of the two.
 * load > `scale_up_threshold` adds `step` replicas (up to the pool's max); load < `scale_down_threshold`
 * drains the `step` least loaded ready replicas (keeping the pool's min ready). After any action the
 * pool waits `cooldown_s` before the next one.
 *
 * Differences from the seed, on purpose: it runs every `interval_s` seconds instead of every 100th
 * scheduled request, and the cooldown is per pool (upstream has one timer for both pools, so a prefill
 * action also delayed decode). Like upstream, it ignores replicas still starting: with a startup delay
 * longer than the cooldown, load stays high and it keeps adding replicas until the first ones are ready.
 */
import { z } from "zod";
import type { Policy, PoolDecision, PoolRole, PoolView, ReplicaView } from "./types.ts";
import { clamp, GAUGES, replicasIn } from "./types.ts";

const fraction = z.number().nonnegative();

export const thresholdConfigSchema = z
  .strictObject({
    /** Load (0..1 = nominal capacity) above which the pool grows. */
    scale_up_threshold: fraction.default(0.8),
    /** Load below which the pool shrinks. */
    scale_down_threshold: fraction.default(0.3),
    /** Replicas added or drained per action. */
    step: z.int().positive().default(1),
    /** Seconds a pool waits after an action before the next one. */
    cooldown_s: z.number().nonnegative().default(5),
    /** Queued prompt tokens one prefill replica counts as full load (the seed's 10,000). */
    prefill_tokens_per_replica: z.number().positive().default(10_000),
    /** Seconds between decisions. */
    interval_s: z.number().positive().default(2),
  })
  .refine((c) => c.scale_down_threshold < c.scale_up_threshold, {
    message: "scale_down_threshold must be below scale_up_threshold",
    path: ["scale_down_threshold"],
  });
export type ThresholdConfig = z.output<typeof thresholdConfigSchema>;

/** Per pool, when it last scaled (absent = never). Plain JSON, replaced never mutated. */
export interface ThresholdState {
  readonly lastScaleAt: Readonly<Record<string, number>>;
}

/** One replica's load on the pool's signal, or undefined when it could not be scraped. */
function replicaLoad(replica: ReplicaView, role: PoolRole, tokensPerReplica: number): number | undefined {
  const gauges = replica.metrics?.gauges;
  if (gauges === undefined) return undefined;
  const prefill = (gauges[GAUGES.pendingPrefillTokens] ?? 0) / tokensPerReplica;
  const decode = gauges[GAUGES.kvCacheUsage] ?? 0;
  if (role === "prefill") return prefill;
  if (role === "decode") return decode;
  return Math.max(prefill, decode);
}

interface PoolLoad {
  /** Pool load, undefined when no ready replica could be scraped. */
  readonly load: number | undefined;
  readonly detail: string;
  /** Ready, scraped replicas with their loads: the only scale-down candidates. */
  readonly scored: readonly { readonly replica: ReplicaView; readonly load: number }[];
}

/** The pool signal of the module comment; for mixed pools the max of the two pool-level signals. */
function poolLoad(pool: PoolView, tokensPerReplica: number): PoolLoad {
  const scored: { replica: ReplicaView; load: number }[] = [];
  let pending = 0;
  let kv = 0;
  for (const replica of replicasIn(pool, "ready")) {
    const load = replicaLoad(replica, pool.role, tokensPerReplica);
    if (load === undefined) continue;
    scored.push({ replica, load });
    pending += replica.metrics?.gauges[GAUGES.pendingPrefillTokens] ?? 0;
    kv += replica.metrics?.gauges[GAUGES.kvCacheUsage] ?? 0;
  }
  const n = scored.length;
  if (n === 0) return { load: undefined, detail: "no ready replica with metrics", scored };
  const prefill = pending / (n * tokensPerReplica);
  const decode = kv / n;
  const prefillDetail = `prefill ${prefill.toFixed(3)} (${pending} pending tokens / (${n} × ${tokensPerReplica}))`;
  const decodeDetail = `decode ${decode.toFixed(3)} (mean KV use over ${n})`;
  if (pool.role === "prefill") return { load: prefill, detail: prefillDetail, scored };
  if (pool.role === "decode") return { load: decode, detail: decodeDetail, scored };
  return { load: Math.max(prefill, decode), detail: `max(${prefillDetail}, ${decodeDetail})`, scored };
}

export function createThresholdPolicy(
  config: ThresholdConfig,
  pools: readonly { name: string; role: PoolRole }[],
): Policy<ThresholdState> {
  const up = config.scale_up_threshold;
  const down = config.scale_down_threshold;
  return {
    name: "threshold",
    interval_s: config.interval_s,
    init: () => ({ lastScaleAt: {} }),
    decide(observation, state) {
      const now = observation.now;
      const targets: Record<string, PoolDecision> = {};
      const reasons: string[] = [];
      const lastScaleAt: Record<string, number> = { ...state.lastScaleAt };
      for (const { name } of pools) {
        const pool = observation.pools.find((p) => p.name === name);
        if (pool === undefined) {
          reasons.push(`threshold ${name}: pool not observed; holding`);
          continue;
        }
        const active = replicasIn(pool, "starting", "ready").length;
        const ready = replicasIn(pool, "ready").length;
        const last = state.lastScaleAt[name];
        if (last !== undefined && now - last < config.cooldown_s) {
          reasons.push(
            `threshold ${name}: cooldown (${(now - last).toFixed(1)}s of ${config.cooldown_s}s since last action)`,
          );
          continue;
        }
        // An empty pool has no signal; restart it when it must exist or requests wait for it.
        if (active === 0) {
          if (pool.min > 0 || observation.queue.noReplica > 0) {
            const desired = clamp(Math.max(1, pool.min), 0, pool.max);
            if (desired > 0) {
              targets[name] = { desired };
              lastScaleAt[name] = now;
              reasons.push(
                `threshold ${name}: no replicas (min ${pool.min}, ${observation.queue.noReplica} held) → ${desired}`,
              );
              continue;
            }
          }
          reasons.push(`threshold ${name}: no replicas and nothing waits for them; holding`);
          continue;
        }
        const { load, detail, scored } = poolLoad(pool, config.prefill_tokens_per_replica);
        if (load === undefined) {
          reasons.push(`threshold ${name}: ${detail}; holding`);
          continue;
        }
        if (load > up) {
          const desired = Math.min(active + config.step, pool.max);
          if (desired > active) {
            targets[name] = { desired };
            lastScaleAt[name] = now;
            reasons.push(`threshold ${name}: load ${detail} > ${up} → ${active} → ${desired}`);
          } else {
            reasons.push(`threshold ${name}: load ${detail} > ${up} but at max ${pool.max}`);
          }
          continue;
        }
        if (load < down) {
          const count = Math.min(config.step, ready - pool.min, scored.length);
          if (count > 0) {
            // Least loaded first; ties go to the newest replica (the warmest old ones stay).
            const victims = [...scored]
              .sort(
                (a, b) =>
                  a.load - b.load ||
                  b.replica.createdAt_s - a.replica.createdAt_s ||
                  (a.replica.id < b.replica.id ? -1 : a.replica.id > b.replica.id ? 1 : 0),
              )
              .slice(0, count)
              .map((entry) => entry.replica.id);
            const desired = active - victims.length;
            targets[name] = { desired, victims };
            lastScaleAt[name] = now;
            reasons.push(
              `threshold ${name}: load ${detail} < ${down} → ${active} → ${desired}, drain ${victims.join(", ")}`,
            );
          } else {
            reasons.push(`threshold ${name}: load ${detail} < ${down} but ${ready} ready ≤ min ${pool.min}`);
          }
          continue;
        }
        reasons.push(`threshold ${name}: load ${detail} within [${down}, ${up}]; holding`);
      }
      return { decision: { targets, reasons }, state: { lastScaleAt } };
    },
  };
}
