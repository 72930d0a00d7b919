import { z } from "zod";

/**
 * `autoscaling:` in a simulation config. Absent means a fixed fleet (the start state, no manager).
 * Units are in key names; every key has a default.
 */

const seconds = z.number().nonnegative();

/** A startup delay: fixed seconds, or a distribution sampled per scale-up from the run's seed. */
export const delaySchema = z.union([
  seconds,
  z.strictObject({ dist: z.literal("fixed"), value: seconds }),
  z
    .strictObject({ dist: z.literal("uniform"), min: seconds, max: seconds })
    .refine((d) => d.max >= d.min, { message: "max must be >= min", path: ["max"] }),
  z.strictObject({ dist: z.literal("lognormal"), mean: z.number().positive(), cv: z.number().nonnegative() }),
]);

export type DelaySpec = z.infer<typeof delaySchema>;

export const autoscalingPoolSchema = z
  .strictObject({
    /** prefill/decode/mixed; derived from the start state for its own pools. */
    role: z.enum(["prefill", "decode", "mixed"]).optional(),
    min: z.int().nonnegative().default(1),
    max: z.int().positive().default(64),
    /** Server SKU of new instances; default: the SKU the start state used for this pool. */
    sku: z.string().optional(),
    startup_delay_s: delaySchema.optional(),
  })
  .refine((pool) => pool.min <= pool.max, { message: "min must be <= max", path: ["min"] });

export const autoscalingSchema = z.strictObject({
  /** Policy name (see `splitscale policies`). */
  policy: z.string().default("sla"),
  /** Policy-specific settings, validated by the policy's own schema. */
  policy_config: z.record(z.string(), z.unknown()).default({}),
  /** A policy file (splitscale policy YAML or MatrixInfer/Kthena AutoscalingPolicy[Binding]); overrides `policy`. */
  policy_file: z.string().optional(),
  /** Seconds between decisions; default: the policy's own tick (HPA 15 s, KPA 2 s, ...). */
  decision_interval_s: z.number().positive().optional(),
  /** Seconds between metric scrapes; default: the decision interval. */
  scrape_interval_s: z.number().positive().optional(),
  /** Age of the metrics a decision sees (scrape + pipeline lag). */
  metrics_delay_s: seconds.default(0),
  /** Startup delay of new instances (seconds from request to ready), per pool overridable. */
  startup_delay_s: delaySchema.default(60),
  /** Polling period of a draining instance (upstream 1 s). */
  drain_check_interval_s: z.number().positive().default(1),
  max_total_instances: z.int().positive().default(200),
  /** Servers that can exist at once per SKU (a quota); unlisted SKUs are unlimited. */
  servers_available: z.record(z.string(), z.int().nonnegative()).default({}),
  pools: z.record(z.string(), autoscalingPoolSchema).default({}),
  /**
   * Named policy variants for `splitscale compare --policies`: e.g. `hpa-tuned: { policy: hpa,
   * policy_config: {...} }`, so a comparison can show tuned baselines next to their defaults.
   */
  variants: z
    .record(
      z.string(),
      z.strictObject({
        policy: z.string(),
        policy_config: z.record(z.string(), z.unknown()).default({}),
        policy_file: z.string().optional(),
        description: z.string().optional(),
      }),
    )
    .default({}),
});

export type AutoscalingConfig = z.infer<typeof autoscalingSchema>;
export type AutoscalingPoolConfig = z.infer<typeof autoscalingPoolSchema>;

/** The seeds' spelling: `applications: [{ scaling_manager: { scale_up_delay, drain_check_interval } }]`. */
export const applicationsSchema = z
  .array(
    z.looseObject({
      scaling_manager: z
        .strictObject({
          scale_up_delay: seconds.optional(),
          drain_check_interval: z.number().positive().optional(),
        })
        .optional(),
    }),
  )
  .max(1, "splitscale simulates one application");
