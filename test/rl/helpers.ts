import type { LoadedConfig } from "../../src/config/config.ts";
import { validateConfig } from "../../src/config/config.ts";

/** A small, fast autoscaled setup (llama2-70b, 1 prefill + 1 decode, Poisson 4 req/s) with an `rl` section. */
export function smallConfig(
  overrides: Record<string, unknown> = {},
  rl: Record<string, unknown> = {},
): LoadedConfig {
  const config = validateConfig(
    {
      model: "llama2-70b",
      cluster: { servers: [{ sku: "dgx-h100", count: 2 }] },
      start_state: { type: "splitwise", prompt: { num_instances: 1 }, token: { num_instances: 1 } },
      scheduler: { name: "mixed_pool", on_saturation: "queue" },
      workload: {
        type: "generator",
        seed: 3,
        arrival: { process: "poisson", rate_per_s: 4 },
        lengths: {
          prompt: { dist: "uniform", min: 100, max: 2000 },
          output: { dist: "uniform", min: 10, max: 300 },
        },
        duration_s: 600,
      },
      autoscaling: {
        startup_delay_s: 10,
        decision_interval_s: 2,
        pools: { prefill: { min: 1, max: 4 }, decode: { min: 1, max: 3 } },
      },
      rl: {
        episode: { mode: "window", length_s: 120, max_drain_s: 60 },
        features: { stack: 2 },
        ppo: { hidden: [8], epochs: 2, minibatch: 64 },
        train: { envs_per_iteration: 2, checkpoint_every: 1 },
        ...rl,
      },
      ...overrides,
    },
    "test",
  );
  return { config, baseDir: process.cwd(), source: "test" };
}
