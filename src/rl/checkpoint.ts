import { z } from "zod";
import { DISCRETE_CHOICES } from "./actions.ts";

/**
 * The on-disk form of a trained policy (`policy.json`) and of a training checkpoint: plain JSON,
 * weights as number arrays (doubles round-trip exactly through JSON). A checkpoint is a policy file
 * plus a `trainer` section (critic, Adam moments, normalizers, counters, the RL config) from which
 * `splitscale train --resume` continues; the `rl` policy reads either and ignores `trainer`.
 */
export const RL_POLICY_FORMAT = "splitscale-rl/1";

const numbers = z.array(z.number());

export const normalizerSchema = z.strictObject({ mean: numbers, var: numbers, count: z.number() });

export const actorSnapshotSchema = z.strictObject({
  kind: z.enum(["continuous", "discrete"]),
  action_dim: z.int().positive(),
  sizes: z.array(z.int().positive()).min(2),
  params: numbers,
  action_std: z.number().positive(),
  obs_norm: normalizerSchema.nullable(),
  clip_obs: z.number().positive(),
});

export const featureSpecSchema = z.strictObject({
  pools: z.array(z.strictObject({ name: z.string(), role: z.enum(["prefill", "decode", "mixed"]) })).min(1),
  stack: z.int().positive(),
  count_scale: z.number().positive(),
  rate_scale: z.number().positive(),
  ttft_slow_s: z.number().positive(),
});

export const policyFileSchema = z
  .strictObject({
    format: z.literal(RL_POLICY_FORMAT),
    description: z.string().optional(),
    env: z.strictObject({
      decision_interval_s: z.number().positive(),
      action: z.enum(["continuous", "discrete"]),
      action_scale_step: z.int().positive(),
      agents: z.enum(["joint", "split"]),
      features: featureSpecSchema,
    }),
    agents: z
      .array(
        z.strictObject({
          name: z.string(),
          pools: z.array(z.int().nonnegative()).min(1),
          actor: actorSnapshotSchema,
        }),
      )
      .min(1),
    /** Where it came from (informational). */
    provenance: z.record(z.string(), z.unknown()).optional(),
    /** Present in training checkpoints only. */
    trainer: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((file, context) => {
    const poolCount = file.env.features.pools.length;
    file.agents.forEach((agent, index) => {
      for (const pool of agent.pools)
        if (pool >= poolCount)
          context.addIssue({
            code: "custom",
            path: ["agents", index, "pools"],
            message: `pool index ${pool} is out of range (${poolCount} pools)`,
          });
      const actor = agent.actor;
      const outputs = actor.kind === "continuous" ? actor.action_dim : actor.action_dim * DISCRETE_CHOICES;
      if (actor.sizes[actor.sizes.length - 1] !== outputs || actor.action_dim !== agent.pools.length)
        context.addIssue({
          code: "custom",
          path: ["agents", index, "actor", "sizes"],
          message: `a ${actor.kind} actor over ${agent.pools.length} pool(s) needs ${outputs} outputs`,
        });
      let expected = 0;
      for (let l = 0; l + 1 < actor.sizes.length; l++)
        expected += (actor.sizes[l]! + 1) * actor.sizes[l + 1]!;
      if (actor.params.length !== expected)
        context.addIssue({
          code: "custom",
          path: ["agents", index, "actor", "params"],
          message: `expected ${expected} parameters for layers [${actor.sizes.join(", ")}], got ${actor.params.length}`,
        });
    });
  });

export type RlPolicyFile = z.output<typeof policyFileSchema>;

/** True when a parsed JSON/YAML value looks like an RL policy file (told by its `format`). */
export function isRlPolicyFile(value: unknown): boolean {
  return (
    value !== null &&
    typeof value === "object" &&
    "format" in value &&
    typeof value.format === "string" &&
    value.format.startsWith("splitscale-rl/")
  );
}
