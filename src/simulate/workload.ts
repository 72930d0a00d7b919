import type { SimulationConfig } from "../config/config.ts";
import { AZURE_CONV_TRACE } from "../paths.ts";
import { openWorkload, type WorkloadSpec } from "../workload/index.ts";
import type { RequestSource } from "../workload/types.ts";

/** The bundled default: the Azure LLM inference 2023 conversation trace, replayed at its real times. */
export const DEFAULT_WORKLOAD: WorkloadSpec = { type: "trace", path: AZURE_CONV_TRACE, format: "azure" };

export function openConfiguredWorkload(config: SimulationConfig, baseDir: string): RequestSource {
  return openWorkload((config.workload as WorkloadSpec | undefined) ?? DEFAULT_WORKLOAD, baseDir);
}
