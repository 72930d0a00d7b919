import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { UsageError } from "../errors.ts";
import { parsePolicyConfig, type PolicyContext, type PolicyEntry } from "../policy/registry.ts";
import type { Decision, Observation, Policy } from "../policy/types.ts";
import { actionDeltas, actionFractions, deltaDecision } from "./actions.ts";
import { Actor } from "./actor.ts";
import { policyFileSchema, RL_POLICY_FORMAT, type RlPolicyFile } from "./checkpoint.ts";
import {
  agentView,
  extractFeatures,
  initialFeatureState,
  withActions,
  type FeatureSpec,
  type FeatureState,
} from "./features.ts";

/**
 * A trained PPO policy as a regular `Policy`: features from the observation (features.ts), each
 * agent's deterministic action (the Gaussian mean, or the most likely choice), deltas applied to the
 * pools' current sizes. Its state is the feature state (plain JSON); it imports nothing from the
 * simulator, so the same file runs in `simulate`, `compare` and live mode.
 */

export const rlConfigSchema = z.strictObject({
  /** Path to a policy.json (or a training checkpoint); relative to the config file. */
  checkpoint: z.string().min(1),
});

/** Reads and validates a policy file; errors name the file and the key. */
export function readRlPolicyFile(path: string): RlPolicyFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read RL policy ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${path}: not JSON: ${(error as Error).message}`);
  }
  return parseRlPolicy(value, path);
}

export function parseRlPolicy(value: unknown, where: string): RlPolicyFile {
  const result = policyFileSchema.safeParse(value);
  if (result.success) return result.data;
  const lines = result.error.issues.map(
    (issue) => `${where}: ${issue.path.map(String).join(".") || "(top level)"}: ${issue.message}`,
  );
  throw new UsageError(`not an RL policy file (format ${RL_POLICY_FORMAT})\n  ${lines.join("\n  ")}`);
}

/** Builds the policy from a parsed file, checking its pools against the run's. */
export function createRlPolicyFromFile(
  file: RlPolicyFile,
  context: PolicyContext,
  where: string,
): Policy<FeatureState> {
  const spec: FeatureSpec = file.env.features;
  for (const pool of spec.pools) {
    const match = context.pools.find((candidate) => candidate.name === pool.name);
    if (match === undefined)
      throw new UsageError(
        `${where}: the policy was trained on pool "${pool.name}" (${pool.role}); this run's pools are ${
          context.pools.map((candidate) => `${candidate.name} (${candidate.role})`).join(", ") || "none"
        }`,
      );
    if (match.role !== pool.role)
      throw new UsageError(
        `${where}: pool "${pool.name}" is ${match.role} here but was ${pool.role} in training`,
      );
  }
  const agents = file.agents.map((agent) => ({ pools: agent.pools, actor: new Actor(agent.actor) }));
  const poolNames = spec.pools.map((pool) => pool.name);
  const { action, action_scale_step } = file.env;
  const label = file.description === undefined ? "rl" : `rl (${file.description})`;
  return {
    name: "rl",
    interval_s: file.env.decision_interval_s,
    init: () => initialFeatureState(spec),
    decide(observation: Observation, state: FeatureState): { decision: Decision; state: FeatureState } {
      const extracted = extractFeatures(observation, state, spec).state;
      const actions = new Array<number>(poolNames.length).fill(action === "continuous" ? 0 : 1);
      for (const agent of agents) {
        const chosen = agent.actor.deterministic(agentView(extracted.frames, spec, agent.pools));
        agent.pools.forEach((pool, index) => (actions[pool] = chosen[index]!));
      }
      const decision = deltaDecision(
        observation,
        poolNames,
        actionDeltas(action, actions, action_scale_step),
        label,
      );
      return { decision, state: withActions(extracted, actionFractions(action, actions)) };
    },
  };
}

/** Resolves `checkpoint` against the directory of the config that names it. */
export function checkpointPath(checkpoint: string, source: string): string {
  const base = existsSync(source) && statSync(source).isFile() ? dirname(resolve(source)) : process.cwd();
  return resolve(base, checkpoint);
}

export const rlPolicyEntry: PolicyEntry = {
  name: "rl",
  description:
    "a PPO policy trained with `splitscale train` (policy_config.checkpoint: DIR/policy.json; in compare: rl:DIR/policy.json)",
  create(raw, context) {
    const where = `${context.source}: autoscaling.policy_config`;
    const config = parsePolicyConfig(rlConfigSchema, raw, where);
    const path = checkpointPath(config.checkpoint, context.source);
    return createRlPolicyFromFile(readRlPolicyFile(path), context, path);
  },
};
