import type { LoadedConfig, SimulationConfig } from "../config/config.ts";
import { autoscalingSchema } from "../config/autoscaling-schema.ts";
import { ConfigError } from "../errors.ts";
import { lookup } from "../model/catalog.ts";
import { decodeReplicas, prefillReplicas, slaConfigSchema, slaPerformance } from "../policy/sla.ts";
import { parsePolicyConfig } from "../policy/registry.ts";
import { planPools, poolCapacity } from "./autoscaling-setup.ts";
import { buildSetup } from "./setup.ts";
import { openConfiguredWorkload } from "./workload.ts";

export interface PeakFleet {
  /** Replicas per pool. */
  readonly replicas: Readonly<Record<string, number>>;
  /** The window the sizing was driven by (start time of the busiest window per pool). */
  readonly peak_window_start_s: Readonly<Record<string, number>>;
  readonly window_s: number;
}

interface WindowStats {
  requests: number;
  promptTokens: number;
  outputTokens: number;
}

/**
 * The fixed fleet a capacity planner would buy for this workload: every pool sized, with the `sla`
 * planner's own capacity model (the TTFT queueing target for prefill, the KV budget for decode), for
 * the busiest `window_s` of the trace. This is "static peak provisioning", the baseline autoscaling
 * has to beat.
 */
export function peakFleet(loaded: LoadedConfig, window_s = 60): PeakFleet {
  const { config, baseDir } = loaded;
  const autoscaling = config.autoscaling ?? autoscalingSchema.parse({});
  const sla = parsePolicyConfig(
    slaConfigSchema,
    autoscaling.policy === "sla" ? autoscaling.policy_config : {},
    `${loaded.source}: autoscaling.policy_config`,
  );
  const setup = buildSetup(config, baseDir, () => 0);
  const windows: WindowStats[] = [];
  const source = openConfiguredWorkload(config, baseDir);
  try {
    for (let request = source.next(); request !== undefined; request = source.next()) {
      const index = Math.floor(request.arrival_s / window_s);
      while (windows.length <= index) windows.push({ requests: 0, promptTokens: 0, outputTokens: 0 });
      const window = windows[index]!;
      window.requests++;
      window.promptTokens += request.prompt_tokens;
      window.outputTokens += request.output_tokens;
    }
  } finally {
    source.close();
  }
  if (windows.length === 0) throw new ConfigError("static peak sizing: the workload has no requests");
  const replicas: Record<string, number> = {};
  const peak_window_start_s: Record<string, number> = {};
  for (const plan of planPools(config, autoscaling)) {
    const capacity = poolCapacity(plan, setup.catalog, setup.model, config.compat.kv_cache_ignores_gqa);
    const sku = lookup(setup.catalog.skus, "sku", plan.sku, `pool ${plan.name}`);
    const latency = setup.perf.forInstance(setup.model.name, sku.processor, plan.template.tensorParallelism);
    const performance = slaPerformance(
      { name: plan.name, role: plan.role, capacity, latency },
      sla,
      "static sizing",
    );
    let best = 1;
    let bestAt = 0;
    windows.forEach((window, index) => {
      if (window.requests === 0) return;
      const requestRate = window.requests / window_s;
      const promptRate = window.promptTokens / window_s;
      const meanPrompt = window.promptTokens / window.requests;
      const meanOutput = window.outputTokens / window.requests;
      let need = 0;
      if (plan.role !== "decode")
        need += prefillReplicas(promptRate, requestRate, meanPrompt, performance, sla.ttft_miss_target, sla);
      if (plan.role !== "prefill") {
        need += decodeReplicas(
          requestRate,
          meanPrompt,
          meanOutput,
          1,
          capacity.maxKvTokens,
          performance,
          sla,
        );
      }
      if (need > best) {
        best = need;
        bestAt = index * window_s;
      }
    });
    replicas[plan.name] = Math.min(Math.max(best, plan.min), plan.max);
    peak_window_start_s[plan.name] = bestAt;
  }
  return { replicas, peak_window_start_s, window_s };
}

/**
 * The same config with its start state resized to `replicas` (one server per instance) and no
 * autoscaling: a fixed fleet from t = 0. Only start states whose pools map onto servers one to one
 * (splitwise homogeneous, baseline, orca) can be resized.
 */
export function withFixedFleet(
  config: SimulationConfig,
  replicas: Readonly<Record<string, number>>,
): SimulationConfig {
  const state = config.start_state;
  const sku = config.cluster.servers[0]?.sku ?? "dgx-h100";
  const { autoscaling: _dropped, applications: _seedSpelling, ...rest } = config;
  if (state.type === "splitwise" && state.split === "homogeneous") {
    const prompt = replicas.prefill ?? state.prompt.num_instances;
    const token = replicas.decode ?? state.token.num_instances;
    return {
      ...rest,
      cluster: { servers: [{ sku, count: prompt + token }] },
      start_state: {
        ...state,
        prompt: { ...state.prompt, num_instances: prompt },
        token: { ...state.token, num_instances: token },
      },
    };
  }
  if (state.type === "baseline" || state.type === "orca") {
    const count = replicas.mixed ?? config.cluster.servers.reduce((sum, group) => sum + group.count, 0);
    return { ...rest, cluster: { servers: [{ sku, count }] } };
  }
  throw new ConfigError(
    `static peak sizing needs a splitwise (homogeneous), baseline or orca start state; got ${state.type}${state.type === "splitwise" ? ` (${state.split})` : ""}`,
  );
}
