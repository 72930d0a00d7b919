/**
 * `static`: a fixed fleet, the baseline every comparison table shows. It never reacts to load, so it
 * measures what the other policies buy (or cost) against a fleet provisioned up front.
 *
 * - `replicas: "auto"` (default): each pool keeps the target it had the first time this policy saw it
 *   (normally the start state, sized for the peak by whoever wrote the config). The size is pinned in
 *   the state and re-asserted every tick, so the fleet returns to it if anything else moved it.
 * - `replicas: {pool: n}`: those pools are held at n; pools not named behave as under "auto".
 */
import { z } from "zod";
import { UsageError, unknownNameMessage } from "../errors.ts";
import type { Policy, PoolDecision, PoolRole } from "./types.ts";

export const staticConfigSchema = z.strictObject({
  /** "auto" = keep every pool at its first observed target; or replicas per pool name. */
  replicas: z.union([z.literal("auto"), z.record(z.string(), z.int().nonnegative())]).default("auto"),
  /** Seconds between decisions; nothing changes between them, so a slow tick is enough. */
  interval_s: z.number().positive().default(60),
});
export type StaticConfig = z.output<typeof staticConfigSchema>;

/** Sizes pinned so far by "auto", per pool. Plain JSON, replaced never mutated. */
export interface StaticState {
  readonly pinned: Readonly<Record<string, number>>;
}

/** Throws when `config.replicas` names a pool the deployment does not have. */
export function createStaticPolicy(
  config: StaticConfig,
  pools: readonly { name: string; role: PoolRole }[],
): Policy<StaticState> {
  const fixed: Readonly<Record<string, number>> = config.replicas === "auto" ? {} : config.replicas;
  const known = new Set(pools.map((p) => p.name));
  for (const name of Object.keys(fixed)) {
    if (!known.has(name)) {
      const names = pools.map((p) => p.name);
      throw new UsageError(`static: replicas.${name}: ${unknownNameMessage("pool", name, names)}`);
    }
  }
  return {
    name: "static",
    interval_s: config.interval_s,
    init: () => ({ pinned: {} }),
    decide(observation, state) {
      const targets: Record<string, PoolDecision> = {};
      const reasons: string[] = [];
      const pinned: Record<string, number> = { ...state.pinned };
      for (const { name } of pools) {
        const configured = fixed[name];
        if (configured !== undefined) {
          targets[name] = { desired: configured };
          reasons.push(`static ${name}: fixed at ${configured} replica(s) (config)`);
          continue;
        }
        let size = pinned[name];
        if (size === undefined) {
          const view = observation.pools.find((p) => p.name === name);
          if (view === undefined) {
            reasons.push(`static ${name}: pool not observed yet; holding`);
            continue;
          }
          size = view.desired;
          pinned[name] = size;
          reasons.push(`static ${name}: pinned at ${size} replica(s) (its size when first observed)`);
        } else {
          reasons.push(`static ${name}: keeping ${size} replica(s)`);
        }
        targets[name] = { desired: size };
      }
      return { decision: { targets, reasons }, state: { pinned } };
    },
  };
}
