import { readFileSync } from "node:fs";
import { ConfigError, unknownNameMessage } from "../errors.ts";
import type { IterationShape, IterationTimeModel, PerformanceModel } from "./performance.ts";

/**
 * Piecewise-linear curve through (x, y) knots with linear extrapolation at both ends, computed the
 * way scipy's interp1d(fill_value="extrapolate") does (same segment choice and operation order), so
 * results match upstream splitwise-sim bit for bit.
 */
export class PiecewiseLinear {
  constructor(
    readonly xs: Float64Array,
    readonly ys: Float64Array,
  ) {
    if (xs.length < 2) throw new ConfigError("a performance curve needs at least two measured points");
  }

  at(x: number): number {
    const xs = this.xs;
    const n = xs.length;
    // searchsorted(side="left"), clipped to [1, n-1]
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xs[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    const index = lo < 1 ? 1 : lo > n - 1 ? n - 1 : lo;
    const xLo = xs[index - 1]!;
    const xHi = xs[index]!;
    const yLo = this.ys[index - 1]!;
    const yHi = this.ys[index]!;
    const slope = (yHi - yLo) / (xHi - xLo);
    return slope * (x - xLo) + yLo;
  }
}

/**
 * Upstream's interpolation, except where a table's last segment falls (llama2-70b TP2's 32768-token
 * point is below its 16384 one) and extrapolating it would predict less time, or even negative time,
 * for more tokens: beyond the last measured point time then grows in proportion to the tokens. Inside
 * the measured range (and so on every upstream reference run) the result is upstream's.
 */
export function positiveAt(curve: PiecewiseLinear, x: number): number {
  const xs = curve.xs;
  const last = xs.length - 1;
  const xLast = xs[last]!;
  const yLast = curve.ys[last]!;
  if (x > xLast && curve.ys[last - 1]! > yLast) return yLast * (x / xLast);
  const y = curve.at(x);
  if (y > 0) return y;
  // Before the first point a steep first segment could reach zero: keep the first measured time.
  return Math.max(curve.ys[0]!, Number.MIN_VALUE);
}

/** Median as pandas computes it: the mean of the two middle values for even counts. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

interface Curves {
  prompt: PiecewiseLinear;
  token: PiecewiseLinear;
}

/**
 * Reads upstream's measured table: per (model, hardware, TP) the median prefill and decode-step time
 * for every x = prompt_size x batch_size.
 */
export function loadPerfTable(path: string): Map<string, Curves> {
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  const header = (lines[0] ?? "").split(",");
  const column = (name: string): number => {
    const index = header.indexOf(name);
    if (index < 0) throw new ConfigError(`${path}: missing column "${name}" (header: ${header.join(",")})`);
    return index;
  };
  const cModel = column("model");
  const cHardware = column("hardware");
  const cTp = column("tensor_parallel");
  const cPrompt = column("prompt_size");
  const cBatch = column("batch_size");
  const cPromptTime = column("prompt_time");
  const cTokenTime = column("token_time");
  const groups = new Map<string, Map<number, { prompt: number[]; token: number[] }>>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    const cells = line.split(",");
    const numbers = [cTp, cPrompt, cBatch, cPromptTime, cTokenTime].map((c) => Number(cells[c]));
    if (numbers.some((v) => !Number.isFinite(v))) {
      throw new ConfigError(
        `${path}:${i + 1}: expected numbers in tensor_parallel, prompt_size, batch_size, prompt_time, token_time`,
      );
    }
    const [tp, promptSize, batchSize, promptMs, tokenMs] = numbers as [
      number,
      number,
      number,
      number,
      number,
    ];
    const key = curveKey(cells[cModel]!, cells[cHardware]!, tp);
    let byX = groups.get(key);
    if (byX === undefined) groups.set(key, (byX = new Map<number, { prompt: number[]; token: number[] }>()));
    const x = promptSize * batchSize;
    let point = byX.get(x);
    if (point === undefined) byX.set(x, (point = { prompt: [], token: [] }));
    point.prompt.push(promptMs / 1000);
    point.token.push(tokenMs / 1000);
  }
  const curves = new Map<string, Curves>();
  for (const [key, byX] of groups) {
    const xs = [...byX.keys()].sort((a, b) => a - b);
    curves.set(key, {
      prompt: new PiecewiseLinear(
        Float64Array.from(xs),
        Float64Array.from(xs.map((x) => median(byX.get(x)!.prompt))),
      ),
      token: new PiecewiseLinear(
        Float64Array.from(xs),
        Float64Array.from(xs.map((x) => median(byX.get(x)!.token))),
      ),
    });
  }
  return curves;
}

function curveKey(model: string, hardware: string, tp: number): string {
  return `${model}|${hardware}|${tp}`;
}

/**
 * Upstream's `db` model: iteration time depends only on the batch's token count B (prompt tokens plus
 * one per decode task). All-prefill batches use the prefill curve at B, all-decode batches the decode
 * curve at B (= number of decode tasks), mixed batches cost 1.1x the prefill curve at B.
 */
class DbIterationModel implements IterationTimeModel {
  constructor(
    private readonly curves: Curves,
    private readonly mixedFactor: number,
  ) {}

  iterationTime(shape: IterationShape): number {
    const batchTokens = shape.prefillTokens + shape.numDecode;
    if (shape.numDecode === 0) return positiveAt(this.curves.prompt, batchTokens);
    if (shape.numPrefill === 0) return positiveAt(this.curves.token, batchTokens);
    return positiveAt(this.curves.prompt, batchTokens) * this.mixedFactor;
  }

  /** Upstream's SLO reference: prefill curve at the prompt size, decode curve at x = prompt size. */
  unloaded(promptTokens: number): { ttft_s: number; tbt_s: number } {
    return {
      ttft_s: positiveAt(this.curves.prompt, promptTokens),
      tbt_s: positiveAt(this.curves.token, promptTokens),
    };
  }
}

export class DbPerformanceModel implements PerformanceModel {
  readonly name = "db";
  private readonly curves: Map<string, Curves>;
  private readonly models = new Map<string, IterationTimeModel>();

  constructor(
    readonly tablePath: string,
    private readonly mixedBatchFactor = 1.1,
  ) {
    this.curves = loadPerfTable(tablePath);
  }

  forInstance(model: string, hardware: string, tensorParallelism: number): IterationTimeModel {
    const key = curveKey(model, hardware, tensorParallelism);
    let iterationModel = this.models.get(key);
    if (iterationModel === undefined) {
      const curves = this.curves.get(key);
      if (curves === undefined) {
        throw new ConfigError(
          `performance_model db (${this.tablePath}) has no measurements for model=${model} hardware=${hardware} tp=${tensorParallelism}; ` +
            unknownNameMessage("combination", `${model}|${hardware}|${tensorParallelism}`, [
              ...this.curves.keys(),
            ]),
        );
      }
      iterationModel = new DbIterationModel(curves, this.mixedBatchFactor);
      this.models.set(key, iterationModel);
    }
    return iterationModel;
  }
}
