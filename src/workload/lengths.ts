import type { Rng } from "../core/rng.ts";
import { UsageError } from "../errors.ts";
import { WorkloadError } from "./errors.ts";
import type { LengthDistribution } from "./spec.ts";
import { openTrace, type TraceFormat } from "./trace-format.ts";

/** Draws (prompt, output) token counts; a draw writes the two fields so it allocates nothing. */
export interface LengthSampler {
  readonly description: string;
  prompt_tokens: number;
  output_tokens: number;
  draw(): void;
}

/** Prompt and output from two independent distributions, each on its own random stream. */
export class DistributionLengths implements LengthSampler {
  readonly description: string;
  prompt_tokens = 1;
  output_tokens = 1;
  private readonly samplePrompt: () => number;
  private readonly sampleOutput: () => number;

  constructor(prompt: LengthDistribution, output: LengthDistribution, rng: Rng) {
    this.samplePrompt = lengthSampler("prompt", prompt, rng.fork("prompt"));
    this.sampleOutput = lengthSampler("output", output, rng.fork("output"));
    this.description = `prompt ${describeDistribution(prompt)}, output ${describeDistribution(output)}`;
  }

  draw(): void {
    this.prompt_tokens = this.samplePrompt();
    this.output_tokens = this.sampleOutput();
  }
}

/**
 * Lengths resampled from a trace's rows. Only the two token columns are kept, in Int32Arrays (8
 * bytes a row), however long the trace. Pairs stay together unless `independent`, which draws the
 * prompt and the output from different rows like upstream's generate_trace.py.
 */
export class TraceLengths implements LengthSampler {
  readonly description: string;
  prompt_tokens = 1;
  output_tokens = 1;

  private constructor(
    private readonly prompts: Int32Array,
    private readonly outputs: Int32Array,
    private readonly independent: boolean,
    private readonly rng: Rng,
    path: string,
  ) {
    this.description = `${independent ? "independent" : "paired"} lengths from ${path} (${prompts.length} rows)`;
  }

  static fromFile(path: string, format: TraceFormat | "auto", independent: boolean, rng: Rng): TraceLengths {
    let prompts: Int32Array = new Int32Array(1024);
    let outputs: Int32Array = new Int32Array(1024);
    let count = 0;
    const source = openTrace(path, format);
    try {
      for (let request = source.next(); request !== undefined; request = source.next()) {
        if (count === prompts.length) {
          prompts = grow(prompts);
          outputs = grow(outputs);
        }
        prompts[count] = request.prompt_tokens;
        outputs[count] = request.output_tokens;
        count++;
      }
    } finally {
      source.close();
    }
    if (count === 0)
      throw new WorkloadError({ file: path }, "the trace has no requests to sample lengths from");
    return new TraceLengths(prompts.slice(0, count), outputs.slice(0, count), independent, rng, path);
  }

  /** Number of rows sampled from. */
  get size(): number {
    return this.prompts.length;
  }

  draw(): void {
    const row = this.rng.nextInt(this.prompts.length);
    this.prompt_tokens = this.prompts[row]!;
    this.output_tokens = this.outputs[this.independent ? this.rng.nextInt(this.outputs.length) : row]!;
  }
}

function grow(array: Int32Array): Int32Array {
  const larger = new Int32Array(array.length * 2);
  larger.set(array);
  return larger;
}

/** A sampler for one distribution; `name` (prompt/output) is only for messages. */
export function lengthSampler(name: string, dist: LengthDistribution, rng: Rng): () => number {
  switch (dist.dist) {
    case "fixed": {
      const value = checkTokenCount(`${name}.value`, dist.value);
      return () => value;
    }
    case "uniform": {
      const min = checkTokenCount(`${name}.min`, dist.min);
      const max = checkTokenCount(`${name}.max`, dist.max);
      if (max < min) throw new UsageError(`${name}: uniform max (${max}) must be >= min (${min})`);
      const span = max - min + 1;
      return () => min + rng.nextInt(span);
    }
    case "lognormal": {
      if (!Number.isFinite(dist.mean) || dist.mean < 1)
        throw new UsageError(`${name}.mean must be a number >= 1, got ${dist.mean}`);
      if (!Number.isFinite(dist.cv) || dist.cv < 0)
        throw new UsageError(`${name}.cv must be a non-negative number, got ${dist.cv}`);
      const max =
        dist.max === undefined ? Number.POSITIVE_INFINITY : checkTokenCount(`${name}.max`, dist.max);
      const sigmaSquared = Math.log1p(dist.cv * dist.cv);
      const sigma = Math.sqrt(sigmaSquared);
      const mu = Math.log(dist.mean) - sigmaSquared / 2;
      return () => Math.min(max, Math.max(1, Math.round(Math.exp(mu + sigma * rng.normal()))));
    }
  }
}

function checkTokenCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function describeDistribution(dist: LengthDistribution): string {
  switch (dist.dist) {
    case "fixed":
      return `${dist.value}`;
    case "uniform":
      return `uniform(${dist.min}, ${dist.max})`;
    case "lognormal":
      return `lognormal(mean=${dist.mean}, cv=${dist.cv}${dist.max === undefined ? "" : `, max=${dist.max}`})`;
  }
}
