import type { z } from "zod";
import {
  createEveraiFreeWorkerPolicy,
  createEveraiPolicy,
  EVERAI_FREE_WORKER_POLICY_NAME,
  everaiConfigSchema,
  everaiFreeWorkerConfigSchema,
} from "./everai.ts";
import { createHpaPolicy, hpaConfigSchema } from "./hpa.ts";
import { createKpaPolicy, kpaConfigSchema } from "./kpa.ts";
import { rlPolicyEntry } from "../rl/policy.ts";
import { loadKthenaPolicyText } from "./kthena/config.ts";
import { createKthenaFromPolicyConfig, createKthenaPolicy } from "./kthena/policy.ts";
import { SEED_003_SMART_SCALING } from "./kthena/seed-example.ts";
import { parsePolicyConfig, registerPolicy, type PolicyContext } from "./registry.ts";
import { createSlaPolicy } from "./sla.ts";
import { createStaticPolicy, staticConfigSchema } from "./static.ts";
import { createThresholdPolicy, thresholdConfigSchema } from "./threshold.ts";
import type { Policy } from "./types.ts";

/** Adapts a `(parsedConfig, pools)` factory to the registry: validate, then build. */
function fromSchema<T extends z.ZodType, S>(
  schema: T,
  create: (config: z.output<T>, pools: PolicyContext["pools"]) => Policy<S>,
): (raw: Readonly<Record<string, unknown>>, context: PolicyContext) => Policy {
  return (raw, context) =>
    create(parsePolicyConfig(schema, raw, `${context.source}: autoscaling.policy_config`), context.pools);
}

/** Every built-in policy, registered by the names configs and `--policies` use. */
registerPolicy({
  name: "sla",
  description:
    "splitscale's planner: prefill/decode sized from token demand and the performance model, forecast over the startup delay, cost-aware scale-down",
  create: createSlaPolicy,
});
registerPolicy({
  name: "static",
  description: "a fixed fleet (the start state's, or replicas per pool): the baseline every comparison shows",
  create: fromSchema(staticConfigSchema, createStaticPolicy),
});
registerPolicy({
  name: "threshold",
  description:
    "the seeds' example autoscaler: per-pool load thresholds (0.8 up, 0.3 down), step and cooldown",
  create: fromSchema(thresholdConfigSchema, createThresholdPolicy),
});
registerPolicy({
  name: "everai",
  aliases: ["everai-simple"],
  description:
    "EverAI SimpleAutoScaler: scale up by a step when the queue exceeds max_queue_size, remove workers idle for max_idle_time",
  create: fromSchema(everaiConfigSchema, createEveraiPolicy),
});
registerPolicy({
  name: EVERAI_FREE_WORKER_POLICY_NAME,
  description: "EverAI FreeWorkerAutoScaler: keep at least min_free_workers idle workers as headroom",
  create: fromSchema(everaiFreeWorkerConfigSchema, createEveraiFreeWorkerPolicy),
});
registerPolicy({
  name: "kthena",
  aliases: ["matrixinfer"],
  description:
    "Kthena (MatrixInfer; default: seed 003's smart-scaling example): HPA-style recommendation with tolerance, panic mode and stabilization; heterogeneous cost optimizer; P/D ratio band",
  create: (raw, context) =>
    Object.keys(raw).length === 0
      ? createKthenaPolicy(loadKthenaPolicyText(SEED_003_SMART_SCALING, "seed 003 example"), context.pools)
      : createKthenaFromPolicyConfig(raw, context),
});
registerPolicy({
  name: "hpa",
  description:
    "Kubernetes HPA (autoscaling/v2): proportional rule with tolerance, readiness and missing-metric rules, stabilization windows, behavior rate policies",
  create: fromSchema(hpaConfigSchema, createHpaPolicy),
});
registerPolicy({
  name: "kpa",
  aliases: ["knative"],
  description:
    "Knative KPA: concurrency (or RPS) over stable and panic windows, panic mode, scale-up/down rate limits, scale to zero",
  create: fromSchema(kpaConfigSchema, createKpaPolicy),
});
registerPolicy(rlPolicyEntry);
