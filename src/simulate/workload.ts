import type { SimulationConfig } from "../config/config.ts";
import { AZURE_CONV_TRACE } from "../paths.ts";
import { openWorkload, type WorkloadSpec } from "../workload/index.ts";
import type { RequestSource } from "../workload/types.ts";

/** The bundled default: the Azure LLM inference 2023 conversation trace, replayed at its real times. */
export const DEFAULT_WORKLOAD: WorkloadSpec = { type: "trace", path: AZURE_CONV_TRACE, format: "azure" };

/** The config's workload; a generator without its own `seed` draws from the run's `seed`. */
export function openConfiguredWorkload(config: SimulationConfig, baseDir: string): RequestSource {
  const spec = (config.workload as WorkloadSpec | undefined) ?? DEFAULT_WORKLOAD;
  if (spec.type === "generator" && spec.seed === undefined)
    return openWorkload({ ...spec, seed: config.seed }, baseDir);
  return openWorkload(spec, baseDir);
}
