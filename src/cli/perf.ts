import { readFileSync, writeFileSync } from "node:fs";
import { type Command, InvalidArgumentError, Option } from "commander";
import { parse, stringify } from "yaml";
import { ConfigError, UsageError, unknownNameMessage } from "../errors.ts";
import {
  gpuNames,
  loadCatalog,
  resolveGpu,
  type Catalog,
  type GpuSpec,
  type ModelSpec,
} from "../model/catalog.ts";
import { calibrateRoofline, type PhaseFit } from "../model/calibrate.ts";
import { parseEfficiency, type RooflineEfficiency } from "../model/factory.ts";
import type { PerformanceModel } from "../model/performance.ts";
import { ProfilePerformanceModel, readProfileCsv, rowShape, type Phase } from "../model/profile.ts";
import {
  architectureOf,
  iterationBytes,
  iterationFlops,
  resolveRooflineParams,
  RooflinePerformanceModel,
  tensorParallelProblem,
} from "../model/roofline.ts";
import { formatTable } from "../report/table.ts";

interface PredictOptions {
  model: string;
  gpu: string;
  tp: number;
  phase: Phase;
  batch: number;
  tokens?: number;
  context?: number;
  profile?: string;
  efficiency?: string;
  explain?: boolean;
}

interface CalibrateOptions {
  profile: string;
  out?: string;
  efficiency?: string;
  json?: boolean;
}

const positiveInt = (flag: string) => (text: string) => {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < 1)
    throw new InvalidArgumentError(`${flag} expects a positive integer, got "${text}"`);
  return value;
};

export function registerPerfCommand(program: Command): void {
  const perf = program
    .command("perf")
    .description(
      "Performance models: predict iteration times, calibrate the roofline, list models and GPUs.",
    );

  perf
    .command("predict")
    .description(
      "Predict one iteration's time: a prefill of B prompts of T tokens, or a decode step of B sequences.",
    )
    .requiredOption("--model <name>", "model (see `splitscale perf models`)")
    .requiredOption("--gpu <name>", "GPU (see `splitscale perf gpus`)")
    .option("--tp <n>", "tensor-parallel degree", positiveInt("--tp"), 1)
    .addOption(
      new Option("--phase <phase>", "iteration kind").choices(["prefill", "decode"]).makeOptionMandatory(),
    )
    .requiredOption("--batch <n>", "sequences in the batch", positiveInt("--batch"))
    .option("--tokens <n>", "prefill: prompt tokens per sequence", positiveInt("--tokens"))
    .option("--context <n>", "decode: context length of each sequence", positiveInt("--context"))
    .option("--profile <file>", "measured iteration times (CSV); the roofline covers what it does not")
    .option(
      "--efficiency <file>",
      "roofline efficiency factors (YAML/JSON, as `perf calibrate --out` writes)",
    )
    .option("--explain", "also print FLOPs, bytes and the inputs")
    .addHelpText(
      "after",
      `
Examples:
  splitscale perf predict --model llama3-8b --gpu h100 --phase decode --batch 32 --context 2048
  splitscale perf predict --model llama2-70b --gpu h100 --tp 8 --phase prefill --batch 1 --tokens 4096 \\
    --profile test/model/fixtures/llama2-70b-h100-tp8.csv`,
    )
    .action((options: PredictOptions) => {
      predictCommand(options);
    });

  perf
    .command("calibrate")
    .description(
      "Fit the roofline's efficiency factors (compute, memory, overhead; prefill and decode) to a profile CSV\n" +
        "and report the relative error before and after.",
    )
    .requiredOption(
      "--profile <file>",
      "measured iteration times (CSV: model,gpu,tp,phase,batch,seq_len,context,ms)",
    )
    .option("--out <file>", "write the fitted efficiency block (YAML) for `performance_model.efficiency`")
    .option("--efficiency <file>", "start from these factors instead of the defaults")
    .option("--json", "print the result as JSON")
    .action((options: CalibrateOptions) => {
      calibrateCommand(options);
    });

  perf
    .command("models")
    .description("List the model catalog (catalog/models.yaml).")
    .option("--json", "print as JSON")
    .action((options: { json?: boolean }) => {
      listModels(options.json === true);
    });

  perf
    .command("gpus")
    .description("List the GPU catalog (catalog/gpus.yaml).")
    .option("--json", "print as JSON")
    .action((options: { json?: boolean }) => {
      listGpus(options.json === true);
    });
}

/** Model, GPU and TP checked as a user would want: did-you-mean, heads divisible, weights fit. */
export function resolveTarget(
  catalog: Catalog,
  modelName: string,
  gpuName: string,
  tp: number,
): { model: ModelSpec; gpu: GpuSpec } {
  const model = catalog.models.get(modelName);
  if (model === undefined)
    throw new UsageError(`--model: ${unknownNameMessage("model", modelName, [...catalog.models.keys()])}`);
  const gpu = resolveGpu(catalog, gpuName);
  if (gpu === undefined)
    throw new UsageError(`--gpu: ${unknownNameMessage("GPU", gpuName, gpuNames(catalog))}`);
  const arch = rethrowAsUsage(() => architectureOf(model));
  const problem = tensorParallelProblem(arch, tp);
  if (problem !== undefined) throw new UsageError(`--tp: ${problem}`);
  const memory = gpu.memory_bytes * tp;
  if (model.weights_bytes >= memory) {
    const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1);
    throw new UsageError(
      `${model.name} needs ${gib(model.weights_bytes)} GiB of weights but ${tp} x ${gpu.name} has ${gib(memory)} GiB; ` +
        `use a larger --tp (at least ${Math.floor(model.weights_bytes / gpu.memory_bytes) + 1}) or a GPU with more memory`,
    );
  }
  return { model, gpu };
}

function rethrowAsUsage<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    // A bad file named on the command line is the user's input, not a configuration failure.
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

function readEfficiency(path: string | undefined): RooflineEfficiency {
  if (path === undefined) return {};
  return rethrowAsUsage(() => {
    let raw: unknown;
    try {
      raw = parse(readFileSync(path, "utf8"));
    } catch (error) {
      throw new ConfigError(`${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const efficiency = parseEfficiency(raw ?? {}, path);
    resolveRooflineParams(efficiency, path);
    return efficiency;
  });
}

function predictCommand(options: PredictOptions): void {
  const catalog = loadCatalog();
  const { model, gpu } = resolveTarget(catalog, options.model, options.gpu, options.tp);
  const [wanted, other] = options.phase === "prefill" ? ["tokens", "context"] : ["context", "tokens"];
  if (options[other as "tokens" | "context"] !== undefined)
    throw new UsageError(
      options.phase === "prefill"
        ? "--phase prefill takes --tokens (prompt tokens per sequence), not --context"
        : "--phase decode takes --context (context length of each sequence), not --tokens",
    );
  const tokens = options[wanted as "tokens" | "context"];
  if (tokens === undefined) throw new UsageError(`--phase ${options.phase} needs --${wanted} N`);
  const efficiency = readEfficiency(options.efficiency);
  const perf: PerformanceModel & { covers?: ProfilePerformanceModel["covers"] } =
    options.profile === undefined
      ? new RooflinePerformanceModel(efficiency, catalog)
      : rethrowAsUsage(
          () => new ProfilePerformanceModel(options.profile!, { roofline: efficiency, catalog }),
        );
  const shape = rowShape(options.phase, options.batch, tokens);
  const seconds = perf.forInstance(model.name, gpu.name, options.tp).iterationTime(shape);
  const ms = seconds * 1000;
  if (options.explain !== true) {
    process.stdout.write(`${JSON.stringify({ ms })}\n`);
    return;
  }
  const flops = iterationFlops(model, shape, options.tp);
  const bytes = iterationBytes(model, shape, options.tp);
  const explained = {
    ms,
    model: model.name,
    gpu: gpu.name,
    tp: options.tp,
    phase: options.phase,
    batch: options.batch,
    [wanted]: tokens,
    source: perf.covers?.(model.name, gpu.name, options.tp) === true ? "profile" : "roofline",
    per_gpu: { flops, bytes, arithmetic_intensity: flops.total / bytes.total },
    gpu_ridge_point: gpu.peak_bf16_flops_per_s / gpu.memory_bandwidth_bytes_per_s,
  };
  process.stdout.write(`${JSON.stringify(explained, null, 2)}\n`);
}

const percent = (value: number): string => (Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : "-");

function calibrateCommand(options: CalibrateOptions): void {
  const catalog = loadCatalog();
  const rows = rethrowAsUsage(() => readProfileCsv(options.profile, catalog));
  if (rows.length === 0) throw new UsageError(`${options.profile}: no measurements to fit`);
  const base = resolveRooflineParams(readEfficiency(options.efficiency));
  const result = calibrateRoofline(rows, { base, catalog });
  const fits = [result.prefill, result.decode].filter((fit): fit is PhaseFit => fit !== undefined);
  const block = {
    prefill: result.params.prefill,
    decode: result.params.decode,
    interconnect: result.params.interconnect,
    collective_latency_s: result.params.collective_latency_s,
  };
  if (options.out !== undefined) {
    const points = fits.map((fit) => `${fit.points} ${fit.phase}`).join(" and ");
    writeFileSync(
      options.out,
      `# roofline efficiency fitted by \`splitscale perf calibrate --profile ${options.profile}\` to ${points} points;\n` +
        "# use it as performance_model.efficiency, or with `splitscale perf predict --efficiency FILE`.\n" +
        stringify(block),
    );
  }
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify({ efficiency: block, fits }, null, 2)}\n`);
    return;
  }
  const table = formatTable(
    [
      "phase",
      "points",
      "median before",
      "worst before",
      "median after",
      "worst after",
      "compute",
      "memory",
      "overhead ms",
    ],
    fits.map((fit) => [
      fit.phase,
      fit.points,
      percent(fit.before.median),
      percent(fit.before.worst),
      percent(fit.after.median),
      percent(fit.after.worst),
      fit.efficiency.compute.toFixed(3),
      fit.efficiency.memory.toFixed(3),
      (fit.efficiency.overhead_s * 1000).toFixed(3),
    ]),
    { title: `roofline relative error on ${options.profile} (before: default or --efficiency factors)` },
  );
  process.stdout.write(`${table}\n`);
  if (options.out !== undefined) process.stdout.write(`wrote ${options.out}\n`);
}

function listModels(json: boolean): void {
  const models = [...loadCatalog().models.values()];
  if (json) {
    process.stdout.write(`${JSON.stringify(models, null, 2)}\n`);
    return;
  }
  const rows = models.map((m) => [
    m.name,
    m.num_layers,
    m.hidden_size,
    `${m.num_heads}/${m.num_kv_heads}`,
    m.ffn_size ?? "-",
    m.vocab_size ?? "-",
    m.num_experts === undefined ? "-" : `${m.experts_per_token} of ${m.num_experts}`,
    (m.weights_bytes / 1e9).toFixed(1),
  ]);
  process.stdout.write(
    `${formatTable(["model", "layers", "hidden", "heads/kv", "ffn", "vocab", "experts", "weights GB"], rows)}\n`,
  );
}

function listGpus(json: boolean): void {
  const gpus = [...loadCatalog().gpus.values()];
  if (json) {
    process.stdout.write(`${JSON.stringify(gpus, null, 2)}\n`);
    return;
  }
  const rows = gpus.map((g) => [
    g.name,
    [g.processor, ...(g.aliases ?? [])].filter((name) => name !== undefined).join(", "),
    (g.peak_bf16_flops_per_s / 1e12).toFixed(1),
    (g.memory_bandwidth_bytes_per_s / 1e12).toFixed(2),
    (g.memory_bytes / 2 ** 30).toFixed(0),
    `${g.interconnect.name} ${(g.interconnect.bandwidth_bytes_per_s / 1e9).toFixed(0)}`,
  ]);
  process.stdout.write(
    `${formatTable(["gpu", "also known as", "BF16 TFLOP/s", "HBM TB/s", "memory GiB", "interconnect GB/s"], rows)}\n`,
  );
}
