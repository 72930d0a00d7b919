/**
 * The `engine` command's flags and action, shared by `splitscale engine` (src/cli/engine.ts) and the
 * light entry point the process actuator spawns (main.ts, which skips loading every other command).
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { createLogger } from "../log.ts";
import { DEFAULT_ENGINE_OPTIONS, startEngineServer, type EngineOptions } from "./server.ts";

function positiveNumber(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0)
      throw new InvalidArgumentError(`${name} expects a number > 0, got "${text}"`);
    return value;
  };
}

function nonNegativeNumber(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0)
      throw new InvalidArgumentError(`${name} expects a number >= 0, got "${text}"`);
    return value;
  };
}

function integer(name: string, min: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min)
      throw new InvalidArgumentError(`${name} expects an integer >= ${min}, got "${text}"`);
    return value;
  };
}

interface EngineFlags {
  host: string;
  port: number;
  model: string;
  servedModelName?: string;
  gpu: string;
  tp: number;
  perfModel: "auto" | "db" | "roofline";
  batching: "splitwise" | "orca";
  maxBatchSize: number;
  maxBatchTokens: number;
  maxModelLen?: number;
  defaultMaxTokens: number;
  timeScale: number;
  loadDelay: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

export function defineEngineCommand(command: Command): Command {
  const d = DEFAULT_ENGINE_OPTIONS;
  return command
    .description(
      "Run an emulated OpenAI-compatible LLM engine (no GPU): /v1/completions, /v1/chat/completions, /v1/models,\n" +
        "/health and /metrics with vLLM's metric names. Tokens are timed by the simulator's performance model and\n" +
        "continuous batching (KV-cache limits included). Output length = max_tokens (the emulator never stops early);\n" +
        "prompt length = the prompt's token ids, a `prompt_tokens` field, or ceil(characters / 4).",
    )
    .option("--host <address>", "address to listen on", d.host)
    .option("--port <n>", "port to listen on (0 = any free port)", integer("--port", 0), d.port)
    .option("--model <name>", "catalog model to emulate (splitscale perf models)", d.model)
    .option("--served-model-name <name>", "model name clients send and /v1/models lists (default: --model)")
    .option("--gpu <name>", "GPU (catalog processor or alias: h100, a100, h100-pcap, ...)", d.gpu)
    .option("--tp <n>", "tensor parallelism (GPUs per replica)", integer("--tp", 1), d.tp)
    .addOption(
      new Option(
        "--perf-model <type>",
        "performance model: auto = the measured table where it has the combination, else roofline",
      )
        .choices(["auto", "db", "roofline"])
        .default("auto"),
    )
    .addOption(
      new Option("--batching <kind>", "continuous batching flavour")
        .choices(["splitwise", "orca"])
        .default(d.batching.kind),
    )
    .option(
      "--max-batch-size <n>",
      "requests per batch",
      integer("--max-batch-size", 1),
      d.batching.maxBatchSize,
    )
    .option(
      "--max-batch-tokens <n>",
      "tokens per iteration (splitwise batching)",
      integer("--max-batch-tokens", 1),
      d.batching.maxBatchTokens,
    )
    .option(
      "--max-model-len <n>",
      "largest prompt + output per request (default: what the KV cache holds)",
      integer("--max-model-len", 2),
    )
    .option(
      "--default-max-tokens <n>",
      "output tokens when a request sets no max_tokens",
      integer("--default-max-tokens", 1),
      d.defaultMaxTokens,
    )
    .option(
      "--time-scale <x>",
      "emulated seconds per wall second (10 = a 10x faster GPU; for tests)",
      positiveNumber("--time-scale"),
      d.timeScale,
    )
    .option(
      "--load-delay <s>",
      "seconds /health answers 503 before serving (model start-up)",
      nonNegativeNumber("--load-delay"),
      d.loadDelay_s,
    )
    .addOption(
      new Option("--log-level <level>", "log level")
        .choices(["debug", "info", "warn", "error"])
        .default("info"),
    )
    .addHelpText(
      "after",
      `
Examples:
  splitscale engine --port 8000                                  # llama2-70b on 8 x H100, real time
  splitscale engine --port 8001 --model bloom-176b --gpu a100 --load-delay 30
  splitscale engine --port 0 --time-scale 20 --max-batch-size 8  # a fast engine for tests
  curl -s localhost:8000/v1/completions -H 'content-type: application/json' \\
    -d '{"model":"llama2-70b","prompt":"hello","max_tokens":32}'

Exit codes: 0 after SIGTERM/SIGINT, 2 bad flags, 3 a configuration that cannot run (unknown model/GPU, port in use).`,
    )
    .action(async (flags: EngineFlags) => {
      await runEngine(flags);
    });
}

async function runEngine(flags: EngineFlags): Promise<void> {
  const log = createLogger("engine", flags.logLevel);
  const options: EngineOptions = {
    host: flags.host,
    port: flags.port,
    model: flags.model,
    ...(flags.servedModelName === undefined ? {} : { servedModelName: flags.servedModelName }),
    gpu: flags.gpu,
    tp: flags.tp,
    perfModel: flags.perfModel,
    batching: {
      kind: flags.batching,
      maxBatchSize: flags.maxBatchSize,
      maxBatchTokens: flags.maxBatchTokens,
      maxPreemptions: 4,
    },
    timeScale: flags.timeScale,
    loadDelay_s: flags.loadDelay,
    ...(flags.maxModelLen === undefined ? {} : { maxModelLen: flags.maxModelLen }),
    defaultMaxTokens: flags.defaultMaxTokens,
    bodyLimitBytes: DEFAULT_ENGINE_OPTIONS.bodyLimitBytes,
    log,
  };
  const server = await startEngineServer(options);
  // Print the bound address on stdout: with --port 0 this is how a caller learns the port.
  process.stdout.write(`listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info(`${signal}: shutting down`);
      const force = setTimeout(() => process.exit(0), 5000);
      force.unref();
      server.close().then(resolve, resolve);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
