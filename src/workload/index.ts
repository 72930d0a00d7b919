import { resolve } from "node:path";
import { Rng } from "../core/rng.ts";
import {
  DiurnalArrivals,
  GammaArrivals,
  PoissonArrivals,
  StepArrivals,
  type ArrivalProcess,
} from "./arrivals.ts";
import { SyntheticSource } from "./generator.ts";
import { DistributionLengths, TraceLengths, type LengthSampler } from "./lengths.ts";
import type {
  ArrivalSpec,
  GeneratorWorkloadSpec,
  LengthsSpec,
  TraceWorkloadSpec,
  WorkloadSpec,
} from "./spec.ts";
import { openTrace } from "./trace-format.ts";
import type { RequestSource, TraceRequest } from "./types.ts";

export type { RequestSource, TraceRequest } from "./types.ts";
export type * from "./spec.ts";
export { WorkloadError, type WorkloadErrorLocation } from "./errors.ts";
export { LineReader, type LineReaderOptions } from "./line-reader.ts";
export { TraceReader, type TraceReaderOptions } from "./trace-reader.ts";
export { AzureTraceReader } from "./azure.ts";
export { SplitwiseTraceReader } from "./splitwise.ts";
export { MooncakeTraceReader } from "./mooncake.ts";
export { detectTraceFormat, openTrace, TRACE_FORMATS, type TraceFormat } from "./trace-format.ts";
export {
  DiurnalArrivals,
  GammaArrivals,
  PoissonArrivals,
  StepArrivals,
  type ArrivalProcess,
} from "./arrivals.ts";
export { DistributionLengths, TraceLengths, lengthSampler, type LengthSampler } from "./lengths.ts";
export { SyntheticSource, type GeneratorLimits } from "./generator.ts";
export { workloadSpecSchema, type WorkloadSpecInput, type WorkloadSpecParsed } from "./schema.ts";

/** Opens the request stream a spec describes; relative paths resolve against `baseDir`. */
export function openWorkload(spec: WorkloadSpec, baseDir: string): RequestSource {
  switch (spec.type) {
    case "trace":
      return openTraceWorkload(spec, baseDir);
    case "generator":
      return openGenerator(spec, baseDir);
  }
}

/** Every request of a source, closing it afterwards. For tests and small traces only: it holds them all. */
export function readAllRequests(source: RequestSource): TraceRequest[] {
  const requests: TraceRequest[] = [];
  try {
    for (let request = source.next(); request !== undefined; request = source.next()) requests.push(request);
  } finally {
    source.close();
  }
  return requests;
}

function openTraceWorkload(spec: TraceWorkloadSpec, baseDir: string): RequestSource {
  const { offset_s, limit, time_scale, start_s, end_s } = spec;
  return openTrace(resolve(baseDir, spec.path), spec.format ?? "auto", {
    offset_s,
    limit,
    time_scale,
    start_s,
    end_s,
  });
}

/**
 * Arrivals and lengths draw from separate streams forked from the seed, so changing the length
 * distribution leaves the arrival times as they were (and the other way round).
 */
function openGenerator(spec: GeneratorWorkloadSpec, baseDir: string): RequestSource {
  const root = new Rng(spec.seed ?? 0);
  const arrivals = arrivalProcess(spec.arrival, root.fork("arrivals"));
  const lengths = lengthSampler(spec.lengths, root.fork("lengths"), baseDir);
  const limits = { duration_s: spec.duration_s, num_requests: spec.num_requests };
  return new SyntheticSource(arrivals, lengths, limits, spec.arrival.process === "steps");
}

function arrivalProcess(spec: ArrivalSpec, rng: Rng): ArrivalProcess {
  switch (spec.process) {
    case "poisson":
      return new PoissonArrivals(spec.rate_per_s, rng);
    case "gamma":
      return new GammaArrivals(spec.rate_per_s, spec.cv, rng);
    case "diurnal":
      return new DiurnalArrivals(spec.mean_rate_per_s, spec.amplitude, spec.period_s, spec.phase ?? 0, rng);
    case "steps":
      return new StepArrivals(spec.steps, rng);
  }
}

function lengthSampler(spec: LengthsSpec, rng: Rng, baseDir: string): LengthSampler {
  if ("from_trace" in spec) {
    return TraceLengths.fromFile(
      resolve(baseDir, spec.from_trace),
      spec.format ?? "auto",
      spec.independent ?? false,
      rng,
    );
  }
  return new DistributionLengths(spec.prompt, spec.output, rng);
}
