/** `splitscale serve --check`: validates a serve config and builds its policy without starting anything. */
import type { LoadedServeConfig } from "../config/serve-schema.ts";
import type { PolicyContext } from "../policy/registry.ts";
import { resolveHardware } from "./engine/hardware.ts";
import { buildConfiguredPolicy, poolCapacityFor } from "./serve.ts";

export function checkServeConfig(loaded: LoadedServeConfig): string {
  const { config, source, baseDir } = loaded;
  const hardware = resolveHardware(
    {
      model: config.model,
      gpu: config.gpu,
      tp: config.tensor_parallelism,
      perfModel: config.performance_model ?? "auto",
      baseDir,
    },
    `${source}:`,
  );
  const lines = [
    `${source}: ok`,
    `  model ${config.model} on ${config.tensor_parallelism} x ${hardware.processor} (${hardware.perfModel} performance model, KV cache ${hardware.maxKvTokens} tokens)`,
    `  listen ${config.listen.host}:${config.listen.port}; queue ${config.queue.max_size} (timeout ${config.queue.timeout_s} s); ${config.routing.strategy}, ${config.routing.max_concurrency_per_worker || "unlimited"} per worker`,
    `  actuator ${config.actuator.type}`,
  ];
  if (config.actuator.type === "kubernetes") {
    lines.push(
      config.actuator.bindings
        ? `  pools and policies from AutoscalingPolicyBinding resources in namespace ${config.actuator.namespace} (${config.actuator.crd_groups.join(", ")})`
        : `  targets: ${
            Object.entries(config.actuator.targets)
              .map(([pool, t]) => `${pool} → ${t.kind}/${t.name}`)
              .join(", ") || "none"
          }`,
    );
    return lines.join("\n");
  }
  const context: PolicyContext = {
    source,
    pools: Object.entries(config.pools).map(([name, pool]) => ({
      name,
      role: pool.role,
      capacity: poolCapacityFor(config, hardware, pool),
      latency: hardware.perf,
    })),
  };
  for (const [name, pool] of Object.entries(config.pools))
    lines.push(`  pool ${name}: ${pool.role}, ${pool.min}..${pool.max} workers`);
  if (config.autoscaling.enabled) {
    const policy = buildConfiguredPolicy(loaded, context);
    lines.push(
      `  policy ${policy.name}, every ${config.autoscaling.decision_interval_s ?? policy.interval_s} s`,
    );
  } else lines.push("  autoscaling disabled (fixed fleet)");
  return lines.join("\n");
}
