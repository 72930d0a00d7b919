// RL benchmarks: environment throughput (decision steps per second) and training wall time.
//   node --import tsx bench/rl.ts                  # everything (about 2 minutes on 2 cores)
//   node --import tsx bench/rl.ts --quick          # smoke: fewer episodes, 20k training steps
//   node --import tsx bench/rl.ts --out FILE       # also write the results as JSON
// Environment throughput is measured on the azure-conv-autoscale preset (whole 1-hour trace per
// episode, 2 s decisions: 1,758 steps) after a warm-up episode, single-threaded in this process, and
// aggregated over worker threads (one episode per task, as training runs them).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import { parseConfigText, type LoadedConfig } from "../src/config/config.ts";
import { rlSchema, type RlConfig } from "../src/config/rl-schema.ts";
import { presetPath } from "../src/config/presets.ts";
import { Rng } from "../src/core/rng.ts";
import { Actor } from "../src/rl/actor.ts";
import { readRlPolicyFile } from "../src/rl/policy.ts";
import { ScalingEnv, envSettings } from "../src/rl/env.ts";
import { PpoAgent } from "../src/rl/ppo.ts";
import type { RolloutInput, RolloutOutput } from "../src/rl/rollout.ts";
import { train } from "../src/rl/train.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outIndex = args.indexOf("--out");
const outFile = outIndex >= 0 ? args[outIndex + 1] : undefined;

function load(preset: string): LoadedConfig {
  const path = presetPath(preset);
  return parseConfigText(readFileSync(path, "utf8"), path, join(path, ".."));
}

type Chooser = (observation: Float64Array, rng: Rng) => number[];

interface EnvResult {
  readonly policy: string;
  readonly episodes: number;
  readonly steps: number;
  readonly wall_s: number;
  readonly steps_per_s: number;
  readonly gpu_hours_per_episode: number;
}

function measureEnv(
  loaded: LoadedConfig,
  rl: RlConfig,
  label: string,
  choose: Chooser,
  episodes: number,
): EnvResult {
  const env = new ScalingEnv(loaded, rl);
  const runEpisode = (seed: number): number => {
    const rng = new Rng(seed);
    let observation = env.reset(seed);
    let steps = 0;
    while (!env.done) {
      observation = env.step(choose(observation, rng)).observation;
      steps++;
    }
    return steps;
  };
  runEpisode(999); // warm-up: JIT and the trace table
  let steps = 0;
  let gpuHours = 0;
  const started = performance.now();
  for (let e = 0; e < episodes; e++) {
    steps += runEpisode(e);
    gpuHours += env.summary().gpu_hours;
  }
  const wall_s = (performance.now() - started) / 1000;
  return {
    policy: label,
    episodes,
    steps,
    wall_s,
    steps_per_s: steps / wall_s,
    gpu_hours_per_episode: gpuHours / episodes,
  };
}

async function measureParallel(
  loaded: LoadedConfig,
  rl: RlConfig,
  actors: RolloutInput["actors"],
  label: string,
  episodes: number,
  threads: number,
): Promise<EnvResult & { threads: number }> {
  const pool = new Piscina({
    filename: join(ROOT, "bin", "worker.js"),
    minThreads: threads,
    maxThreads: threads,
  });
  const input = (seed: number): RolloutInput => ({
    config: loaded.config,
    baseDir: loaded.baseDir,
    source: loaded.source,
    rl,
    actors,
    episodeSeed: seed,
    sampleSeed: seed,
    deterministic: true,
  });
  try {
    // Warm every thread first (trace table and JIT): two episodes per thread.
    await Promise.all(
      Array.from({ length: 2 * threads }, (_, i) =>
        pool.run({ task: "rl/rollout-task", input: input(900 + i) }),
      ),
    );
    const started = performance.now();
    const outputs = (await Promise.all(
      Array.from({ length: episodes }, (_, e) => pool.run({ task: "rl/rollout-task", input: input(e) })),
    )) as RolloutOutput[];
    const wall_s = (performance.now() - started) / 1000;
    const steps = outputs.reduce((sum, output) => sum + output.steps, 0);
    return {
      policy: label,
      episodes,
      steps,
      wall_s,
      steps_per_s: steps / wall_s,
      gpu_hours_per_episode: outputs.reduce((sum, output) => sum + output.summary.gpu_hours, 0) / episodes,
      threads,
    };
  } finally {
    await pool.destroy();
  }
}

async function main(): Promise<void> {
  const threads = availableParallelism();
  const conv = load("azure-conv-autoscale");
  const rlWhole = rlSchema.parse({ episode: { mode: "whole" }, features: { stack: 2 } });
  const episodes = quick ? 2 : 4;
  const results: EnvResult[] = [];
  const hold: Chooser = () => [0, 0];
  const random: Chooser = (_, rng) => [rng.normal() * 0.3, rng.normal() * 0.3];
  results.push(measureEnv(conv, rlWhole, "hold (start-state fleet)", hold, episodes));
  results.push(measureEnv(conv, rlWhole, "random (N(0, 0.3) actions)", random, episodes));

  // The shipped trained policy, if present (its own feature and action settings).
  const shipped = join(ROOT, "policies", "rl-azure-conv", "policy.json");
  let trainedActors: RolloutInput["actors"] | undefined;
  let trainedRl: RlConfig | undefined;
  if (existsSync(shipped)) {
    const file = readRlPolicyFile(shipped);
    trainedRl = rlSchema.parse({
      episode: { mode: "whole" },
      agents: file.env.agents,
      action: file.env.action,
      action_scale_step: file.env.action_scale_step,
      features: {
        stack: file.env.features.stack,
        count_scale: file.env.features.count_scale,
        rate_scale: file.env.features.rate_scale,
        ttft_slow_s: file.env.features.ttft_slow_s,
      },
    });
    trainedActors = file.agents.map((agent) => agent.actor);
    const actor = new Actor(file.agents[0]!.actor);
    if (file.agents.length === 1)
      results.push(
        measureEnv(
          conv,
          trainedRl,
          "trained (policies/rl-azure-conv)",
          (obs) => actor.deterministic(obs),
          episodes,
        ),
      );
  }
  const parallelRl = trainedRl ?? rlWhole;
  const parallelActors =
    trainedActors ??
    envSettings(conv, rlWhole).agents.map((layout) =>
      PpoAgent.create(layout, "continuous", rlWhole.ppo, 1).snapshot(),
    );
  const parallel = await measureParallel(
    conv,
    parallelRl,
    parallelActors,
    trainedActors === undefined ? "untrained actor" : "trained (policies/rl-azure-conv)",
    quick ? threads * 2 : threads * 6,
    threads,
  );

  // Training wall time on the RL preset (15-minute windows, 8 episodes per iteration).
  const rlPreset = load("rl-azure-conv");
  const trainSteps = quick ? 20_000 : 100_000;
  const dir = mkdtempSync(join(tmpdir(), "bench-rl-"));
  const trained = await train({ loaded: rlPreset, outDir: dir, steps: trainSteps, threads, charts: false });
  rmSync(dir, { recursive: true, force: true });
  const rollout_s = trained.curve.reduce((sum, row) => sum + row.rollout_s, 0);
  const update_s = trained.curve.reduce((sum, row) => sum + row.update_s, 0);
  const training = {
    steps: trained.steps,
    iterations: trained.iterations,
    wall_s: trained.wall_s,
    steps_per_s: trained.steps / trained.wall_s,
    rollout_s,
    update_s,
    threads,
  };

  const machine = {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? "?",
    loadavg: loadavg(),
    node: process.version,
  };
  const line = (r: EnvResult, extra = ""): string =>
    `${r.policy.padEnd(36)} ${String(r.steps).padStart(7)} steps ${r.wall_s.toFixed(2).padStart(7)} s ${r.steps_per_s.toFixed(0).padStart(7)} steps/s  ${r.gpu_hours_per_episode.toFixed(1).padStart(6)} GPU-h/episode${extra}`;
  process.stdout.write(
    `machine: ${machine.cpus} × ${machine.model}, load ${machine.loadavg.map((l) => l.toFixed(2)).join(" ")}\n`,
  );
  process.stdout.write("environment, azure-conv-autoscale (whole trace, 2 s decisions), one thread:\n");
  for (const r of results) process.stdout.write(`  ${line(r)}\n`);
  process.stdout.write(`environment, ${parallel.threads} worker threads:\n  ${line(parallel)}\n`);
  process.stdout.write(
    `training, rl-azure-conv, ${training.threads} threads: ${training.steps} steps in ${training.iterations} iterations, ${training.wall_s.toFixed(1)} s (${training.steps_per_s.toFixed(0)} steps/s; rollouts ${rollout_s.toFixed(1)} s, PPO updates ${update_s.toFixed(1)} s)\n`,
  );
  if (outFile !== undefined)
    writeFileSync(outFile, `${JSON.stringify({ machine, env: results, parallel, training }, null, 2)}\n`);
}

await main();
