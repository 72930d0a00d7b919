import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Command } from "commander";
import { UsageError } from "../errors.ts";
import { train } from "../rl/train.ts";
import { ProgressReporter } from "./progress.ts";
import { resolveSimulateConfig } from "./simulate.ts";

interface TrainCliOptions {
  config?: string;
  preset?: string;
  set: string[];
  out?: string;
  steps?: string;
  seed?: string;
  resume?: string;
  threads?: string;
  progress: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function positiveInteger(flag: string, text: string | undefined, allowZero = false): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || (!allowZero && value === 0))
    throw new UsageError(
      `${flag} expects a ${allowZero ? "non-negative" : "positive"} integer, got "${text}"`,
    );
  return value;
}

export function registerTrainCommand(program: Command): void {
  program
    .command("train")
    .description(
      "Train a PPO autoscaling policy on the simulator (episodes in parallel on all cores) and write DIR/policy.json.",
    )
    .option("-c, --config <file>", "YAML config file (with an optional `rl:` section, see docs/rl.md)")
    .option("-p, --preset <name>", "built-in config (default: rl-azure-conv)")
    .option(
      "-s, --set <key=value>",
      "override a config key, e.g. --set rl.reward.w_cost=0.1 (repeatable)",
      collect,
      [],
    )
    .option("-o, --out <dir>", "output directory (default: out/rl)")
    .option(
      "--steps <n>",
      "decision steps to train for, rounded up to whole PPO iterations (default: rl.train.steps)",
    )
    .option("--seed <n>", "random seed (default: the config's)")
    .option("--resume <dir>", "continue from DIR/checkpoints/latest.json (or a checkpoint file)")
    .option("--threads <n>", "rollout worker threads (default: all cores; 0 = main thread)")
    .option("--no-progress", "do not draw the progress bar")
    .addHelpText(
      "after",
      `
Examples:
  splitscale train                                         # rl-azure-conv preset, writes out/rl/
  splitscale train --steps 200000 --out out/rl-short
  splitscale train --preset rl-azure-conv --set rl.reward.w_cost=0.1 --seed 7
  splitscale train --out out/rl --resume out/rl --steps 2000000   # continue to 2M steps
  splitscale compare --policies static,sla,rl:out/rl/policy.json  # evaluate it

Writes DIR/policy.json (the trained policy: \`--policies rl:DIR/policy.json\` in compare, or
\`autoscaling: { policy: rl, policy_config: { checkpoint: DIR/policy.json } }\` in a config),
DIR/learning_curve.csv, DIR/learning_curve.svg/png (mean episode reward, SLO attainment and GPU-hours
per iteration), DIR/checkpoints/ (every rl.train.checkpoint_every iterations, and latest.json) and
DIR/train.json. Training is reproducible: same config and seed, same policy, whatever --threads.`,
    )
    .action(async (options: TrainCliOptions) => {
      await trainCommand(options);
    });
}

async function trainCommand(options: TrainCliOptions): Promise<void> {
  const steps = positiveInteger("--steps", options.steps);
  const threads = positiveInteger("--threads", options.threads, true);
  const { loaded, name } = resolveSimulateConfig({
    config: options.config,
    preset: options.config === undefined ? (options.preset ?? "rl-azure-conv") : options.preset,
    set: options.set,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    progress: false,
  });
  const outDir = options.out ?? join("out", "rl");
  mkdirSync(outDir, { recursive: true });
  const progress = new ProgressReporter(
    "train",
    options.progress,
    "{bar} {value}/{total} steps | iter {iter} | reward {reward} | SLO {slo} | GPU-h {gpu}",
  );
  const result = await train({
    loaded,
    outDir,
    ...(steps === undefined ? {} : { steps }),
    ...(options.resume === undefined ? {} : { resume: options.resume }),
    ...(threads === undefined ? {} : { threads }),
    onIteration: (row, total) =>
      progress.updateCount(Math.min(row.steps, total), total, {
        iter: row.iteration,
        reward: row.reward.toFixed(1),
        slo: `${(row.slo_attainment * 100).toFixed(2)}%`,
        gpu: row.gpu_hours.toFixed(2),
      }),
  });
  progress.stop();
  const last = result.curve[result.curve.length - 1];
  const summary = {
    config: loaded.source,
    name,
    seed: loaded.config.seed,
    iterations: result.iterations,
    steps: result.steps,
    wall_s: result.wall_s,
    steps_per_s: result.wall_s > 0 ? result.steps / result.wall_s : null,
    policy_iteration: result.policyIteration,
    final: last ?? null,
    evaluation: result.evaluation ?? null,
    files: result.files,
  };
  writeFileSync(join(outDir, "train.json"), `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(
    `trained ${result.steps} steps in ${result.iterations} iterations (${result.wall_s.toFixed(1)} s)` +
      (last === undefined
        ? "\n"
        : `; last iteration: reward ${last.reward.toFixed(2)}, SLO attainment ${(last.slo_attainment * 100).toFixed(2)} %, ${last.gpu_hours.toFixed(2)} GPU-h per episode\n`),
  );
  if (result.evaluation !== undefined) {
    const e = result.evaluation;
    process.stdout.write(
      `policy.json: iteration ${result.policyIteration}, whole workload: SLO attainment ${(e.slo_attainment * 100).toFixed(2)} %, ${e.gpu_hours.toFixed(2)} GPU-h, ${e.scale_events} scale events\n`,
    );
  }
  process.stdout.write(`wrote ${[...result.files, join(outDir, "train.json")].join(", ")}\n`);
}
