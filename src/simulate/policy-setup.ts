import "../policy/builtin.ts";
import type { LoadedConfig } from "../config/config.ts";
import type { AutoscalingConfig } from "../config/autoscaling-schema.ts";
import { resolve } from "node:path";
import { loadPolicyFile } from "../policy/policy-file.ts";
import { findPolicy, type PolicyContext } from "../policy/registry.ts";
import type { Policy } from "../policy/types.ts";

/** The policy an autoscaling config names, validated against the run's pools. */
export function buildPolicy(
  loaded: LoadedConfig,
  autoscaling: AutoscalingConfig,
  context: PolicyContext,
): Policy {
  if (autoscaling.policy_file !== undefined)
    return loadPolicyFile(resolve(loaded.baseDir, autoscaling.policy_file), context);
  const entry = findPolicy(autoscaling.policy, `${loaded.source}: autoscaling.policy`);
  return entry.create(autoscaling.policy_config, context);
}
