import { z } from "zod";
import type { WorkloadSpec } from "./spec.ts";

/**
 * zod mirror of `WorkloadSpec` for configs to embed: strict objects (typos are errors) and the
 * defaults written out. Semantic checks the types cannot express (amplitude in [0, 1], increasing
 * steps, min <= max) are here too, so a config fails at load time rather than when the run starts.
 */

const traceFormat = z.enum(["auto", "azure", "splitwise", "mooncake"]);
const positive = z.number().positive();
const tokenCount = z.int().positive();

const traceWorkloadSchema = z
  .strictObject({
    type: z.literal("trace"),
    path: z.string().min(1),
    format: traceFormat.default("auto"),
    offset_s: z.number().nonnegative().default(0),
    limit: z.int().nonnegative().optional(),
    time_scale: positive.default(1),
    start_s: z.number().nonnegative().optional(),
    end_s: positive.optional(),
  })
  .refine((spec) => spec.end_s === undefined || spec.end_s > (spec.start_s ?? 0), {
    message: "end_s must be greater than start_s",
    path: ["end_s"],
  });

const rateStepSchema = z.strictObject({ until_s: positive, rate_per_s: z.number().nonnegative() });

const arrivalSchema = z.discriminatedUnion("process", [
  z.strictObject({ process: z.literal("poisson"), rate_per_s: positive }),
  z.strictObject({ process: z.literal("gamma"), rate_per_s: positive, cv: positive }),
  z.strictObject({
    process: z.literal("diurnal"),
    mean_rate_per_s: positive,
    amplitude: z.number().min(0).max(1),
    // At least a second: shorter periods are not a daily cycle, and tiny ones overflow the rate curve.
    period_s: z.number().min(1),
    phase: z.number().default(0),
  }),
  z.strictObject({
    process: z.literal("steps"),
    steps: z
      .array(rateStepSchema)
      .min(1)
      .refine((steps) => steps.every((step, i) => i === 0 || step.until_s > steps[i - 1]!.until_s), {
        message: "until_s must increase from step to step",
      }),
  }),
]);

const lengthDistributionSchema = z.discriminatedUnion("dist", [
  z.strictObject({ dist: z.literal("fixed"), value: tokenCount }),
  z
    .strictObject({ dist: z.literal("uniform"), min: tokenCount, max: tokenCount })
    .refine((dist) => dist.max >= dist.min, { message: "max must be >= min", path: ["max"] }),
  z
    .strictObject({
      dist: z.literal("lognormal"),
      mean: z.number().min(1),
      cv: z.number().nonnegative(),
      /** Samples above are clamped to it (a cap, like a model's context length), which lowers the mean. */
      max: tokenCount.optional(),
    })
    .refine((dist) => dist.max === undefined || dist.max >= dist.mean, {
      message: "max must be >= mean (samples above max are clamped to it)",
      path: ["max"],
    }),
]);

const lengthsSchema = z.union([
  z.strictObject({
    from_trace: z.string().min(1),
    format: traceFormat.default("auto"),
    independent: z.boolean().default(false),
  }),
  z.strictObject({ prompt: lengthDistributionSchema, output: lengthDistributionSchema }),
]);

const generatorWorkloadSchema = z
  .strictObject({
    type: z.literal("generator"),
    /** Absent: the simulation's own `seed` (so `--seed` varies a generated workload too). */
    seed: z.int().optional(),
    arrival: arrivalSchema,
    lengths: lengthsSchema,
    duration_s: positive.optional(),
    num_requests: z.int().nonnegative().optional(),
  })
  .refine(
    (spec) =>
      spec.duration_s !== undefined || spec.num_requests !== undefined || spec.arrival.process === "steps",
    {
      message: "set duration_s or num_requests, or the generator never ends",
    },
  );

export const workloadSpecSchema = z.discriminatedUnion("type", [
  traceWorkloadSchema,
  generatorWorkloadSchema,
]);

export type WorkloadSpecInput = z.input<typeof workloadSpecSchema>;
export type WorkloadSpecParsed = z.output<typeof workloadSpecSchema>;

// Compile-time guard that the schema and the hand-written types do not drift apart.
type _ParsedIsSpec = WorkloadSpecParsed extends WorkloadSpec ? true : never;
const _schemaMatchesTypes: _ParsedIsSpec = true;
void _schemaMatchesTypes;
