import { resolve } from "node:path";
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { DEFAULT_PERF_TABLE } from "../paths.ts";
import { loadCatalog, type Catalog } from "./catalog.ts";
import { DbPerformanceModel } from "./perf-db.ts";
import type { PerformanceModel } from "./performance.ts";
import { ProfilePerformanceModel, type OutsideMode } from "./profile.ts";
import { RooflinePerformanceModel, resolveRooflineParams, type RooflineParamsInput } from "./roofline.ts";

const phaseEfficiencySchema = z.strictObject({
  compute: z.number().gt(0).lte(1).optional(),
  memory: z.number().gt(0).lte(1).optional(),
  overhead_s: z.number().nonnegative().optional(),
});

/**
 * The roofline's tunable parameters as a config block (every key optional; defaults in
 * DEFAULT_ROOFLINE_PARAMS). `splitscale perf calibrate --out FILE` writes one.
 */
export const rooflineEfficiencySchema = z.strictObject({
  prefill: phaseEfficiencySchema.optional(),
  decode: phaseEfficiencySchema.optional(),
  interconnect: z.number().gt(0).lte(1).optional(),
  collective_latency_s: z.number().nonnegative().optional(),
});

export type RooflineEfficiency = z.infer<typeof rooflineEfficiencySchema>;

/**
 * A `performance_model` config block, for the config schema to adopt. mixed_batch_factor has no
 * default here on purpose: the factory picks 1.1 for db (upstream) and 1 for roofline and profile.
 */
export const performanceModelSpecSchema = z.strictObject({
  type: z.enum(["db", "roofline", "profile"]).default("db"),
  table: z.string().optional(),
  profile: z.string().optional(),
  mixed_batch_factor: z.number().positive().optional(),
  efficiency: rooflineEfficiencySchema.optional(),
  outside: z.enum(["anchored", "roofline"]).optional(),
});

/** What a `performance_model` config block says. */
export interface PerformanceModelSpec {
  readonly type: "db" | "roofline" | "profile";
  /** db: the measured table (splitwise-sim format); default the bundled Splitwise table. */
  readonly table?: string;
  /** profile: a CSV of measured iteration times (model,gpu,tp,phase,batch,seq_len,context,ms). */
  readonly profile?: string;
  /** Multiplier on mixed prefill+decode iterations: db default 1.1 (upstream), roofline/profile 1. */
  readonly mixed_batch_factor?: number;
  /** roofline/profile: efficiency factors and overheads. */
  readonly efficiency?: RooflineEfficiency;
  /** profile: beyond the measured range, `anchored` (default) or plain `roofline`. */
  readonly outside?: OutsideMode;
}

/** Builds the performance model a config names; relative paths resolve against `baseDir`. */
export function createPerformanceModel(
  spec: PerformanceModelSpec,
  baseDir: string,
  catalog: Catalog = loadCatalog(),
): PerformanceModel {
  const where = "performance_model";
  const unused = (key: "table" | "profile" | "efficiency" | "outside", types: string): void => {
    if (spec[key] !== undefined)
      throw new ConfigError(`${where}.${key} applies to type ${types} only (type is ${spec.type})`);
  };
  switch (spec.type) {
    case "db": {
      unused("profile", "profile");
      unused("efficiency", "roofline and profile");
      unused("outside", "profile");
      const table = spec.table === undefined ? DEFAULT_PERF_TABLE : resolve(baseDir, spec.table);
      return new DbPerformanceModel(table, spec.mixed_batch_factor ?? 1.1);
    }
    case "roofline":
      unused("table", "db");
      unused("profile", "profile");
      unused("outside", "profile");
      return new RooflinePerformanceModel(rooflineParams(spec, where), catalog);
    case "profile": {
      unused("table", "db");
      if (spec.profile === undefined)
        throw new ConfigError(`${where}.profile: type profile needs a CSV of measured iteration times`);
      if (spec.outside !== undefined && spec.outside !== "anchored" && spec.outside !== "roofline")
        throw new ConfigError(
          `${where}.outside: expected anchored or roofline, got "${String(spec.outside)}"`,
        );
      return new ProfilePerformanceModel(resolve(baseDir, spec.profile), {
        roofline: rooflineParams(spec, where),
        outside: spec.outside ?? "anchored",
        catalog,
      });
    }
    default: {
      const type: never = spec.type;
      throw new ConfigError(
        `${where}.type: unknown performance model "${String(type)}" (db, roofline, profile)`,
      );
    }
  }
}

function rooflineParams(spec: PerformanceModelSpec, where: string): RooflineParamsInput {
  const efficiency = parseEfficiency(spec.efficiency ?? {}, `${where}.efficiency`);
  const input: RooflineParamsInput = {
    ...efficiency,
    ...(spec.mixed_batch_factor === undefined ? {} : { mixed_batch_factor: spec.mixed_batch_factor }),
  };
  resolveRooflineParams(input, `${where}.efficiency`); // fail here, naming the config key
  return input;
}

/** Validates an efficiency block (from a config or a `perf calibrate --out` file). */
export function parseEfficiency(raw: unknown, where: string): RooflineEfficiency {
  const result = rooflineEfficiencySchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = [where, ...issue.path.map(String)].join(".");
      return `${key}: ${issue.message}`;
    });
    throw new ConfigError(problems.join("\n"));
  }
  return result.data;
}
