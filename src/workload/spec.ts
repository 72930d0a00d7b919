import type { TraceFormat } from "./trace-format.ts";

/**
 * Workload descriptions as a config states them. `schema.ts` mirrors these types in zod (with
 * defaults); `openWorkload` accepts either form. Times are seconds, rates are requests per second,
 * relative paths resolve against the config's directory.
 */
export type WorkloadSpec = TraceWorkloadSpec | GeneratorWorkloadSpec;

/** Replay a trace file. */
export interface TraceWorkloadSpec {
  readonly type: "trace";
  readonly path: string;
  /** Default "auto": by extension and header line. */
  readonly format?: TraceFormat | "auto";
  /** Arrival time of the trace origin (or of start_s). Default 0. */
  readonly offset_s?: number;
  /** At most this many requests. */
  readonly limit?: number;
  /** Multiplies inter-arrival gaps: 0.5 is twice the rate. Default 1. */
  readonly time_scale?: number;
  /** Window on the raw trace time (Azure: seconds since the first row); arrivals re-based to start at offset_s. */
  readonly start_s?: number;
  readonly end_s?: number;
}

/** Synthetic requests: an arrival process plus length distributions, deterministic given the seed. */
export interface GeneratorWorkloadSpec {
  readonly type: "generator";
  /** Default 0; in a simulation config, the run's `seed`. */
  readonly seed?: number;
  readonly arrival: ArrivalSpec;
  readonly lengths: LengthsSpec;
  /** Stop before the first arrival at or after this time. */
  readonly duration_s?: number;
  /** Stop after this many requests. At least one of duration_s and num_requests is needed unless `steps` ends the process. */
  readonly num_requests?: number;
}

export type ArrivalSpec = PoissonArrivalSpec | GammaArrivalSpec | DiurnalArrivalSpec | StepsArrivalSpec;

export interface PoissonArrivalSpec {
  readonly process: "poisson";
  readonly rate_per_s: number;
}

/** Gamma renewal process: inter-arrival gaps with the given mean rate and coefficient of variation (cv 1 = Poisson, > 1 bursty). */
export interface GammaArrivalSpec {
  readonly process: "gamma";
  readonly rate_per_s: number;
  readonly cv: number;
}

/** Poisson with rate(t) = mean · (1 + amplitude · sin(2π t / period_s + phase)); amplitude in [0, 1]. */
export interface DiurnalArrivalSpec {
  readonly process: "diurnal";
  readonly mean_rate_per_s: number;
  readonly amplitude: number;
  readonly period_s: number;
  /** Radians. Default 0. */
  readonly phase?: number;
}

/** Poisson with a piecewise-constant rate: `rate_per_s` until `until_s`, then the next step. Arrivals end after the last step. */
export interface StepsArrivalSpec {
  readonly process: "steps";
  readonly steps: readonly RateStep[];
}

export interface RateStep {
  readonly until_s: number;
  readonly rate_per_s: number;
}

export type LengthsSpec = TraceLengthsSpec | DistributionLengthsSpec;

/** Sample (prompt, output) pairs from a trace file's rows. */
export interface TraceLengthsSpec {
  readonly from_trace: string;
  readonly format?: TraceFormat | "auto";
  /** Sample prompt and output from different rows (like upstream generate_trace.py). Default false: keep pairs. */
  readonly independent?: boolean;
}

export interface DistributionLengthsSpec {
  readonly prompt: LengthDistribution;
  readonly output: LengthDistribution;
}

/** Token-count distributions; samples are rounded to integers and clamped to >= 1. */
export type LengthDistribution = FixedLength | UniformLength | LognormalLength;

export interface FixedLength {
  readonly dist: "fixed";
  readonly value: number;
}

/** Integers in [min, max], both included. */
export interface UniformLength {
  readonly dist: "uniform";
  readonly min: number;
  readonly max: number;
}

/**
 * Lognormal given the mean and coefficient of variation of the tokens themselves (not of their log):
 * sigma² = ln(1 + cv²), mu = ln(mean) − sigma²/2. Samples above `max` are clamped to it.
 */
export interface LognormalLength {
  readonly dist: "lognormal";
  readonly mean: number;
  readonly cv: number;
  readonly max?: number;
}
