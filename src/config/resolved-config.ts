import { isAbsolute, resolve } from "node:path";
import { checkpointPath } from "../rl/policy.ts";
import type { SimulationConfig } from "./config.ts";

/**
 * The config as `config.resolved.yaml` records it: every file it names (the trace, the trace lengths
 * are drawn from, the performance table or profile, policy files, RL checkpoints) made absolute. A
 * relative path in a config resolves against the config's own directory, which for the saved copy is
 * the run's output directory, so without this `simulate --config OUT/config.resolved.yaml` could not
 * find the preset's `../data/...` trace.
 */
export function withAbsolutePaths(
  config: SimulationConfig,
  baseDir: string,
  source: string,
): SimulationConfig {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  const fromBase = (path: string): string => (isAbsolute(path) ? path : resolve(baseDir, path));
  const rewrite = (holder: unknown, key: string, absolute: (path: string) => string): void => {
    if (!isRecord(holder)) return;
    const value = holder[key];
    if (typeof value === "string" && value !== "") holder[key] = absolute(value);
  };

  const workload = copy.workload;
  rewrite(workload, "path", fromBase);
  if (isRecord(workload)) rewrite(workload.lengths, "from_trace", fromBase);
  rewrite(copy.performance_model, "table", fromBase);
  rewrite(copy.performance_model, "profile", fromBase);

  const autoscaling = copy.autoscaling;
  if (isRecord(autoscaling)) {
    const policies = [
      autoscaling,
      ...(isRecord(autoscaling.variants) ? Object.values(autoscaling.variants) : []),
    ];
    for (const policy of policies) {
      if (!isRecord(policy)) continue;
      rewrite(policy, "policy_file", fromBase);
      // The rl policy resolves its checkpoint against the config file, not baseDir (src/rl/policy.ts).
      if (policy.policy === "rl")
        rewrite(policy.policy_config, "checkpoint", (path) => checkpointPath(path, source));
    }
  }
  return copy as unknown as SimulationConfig;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
