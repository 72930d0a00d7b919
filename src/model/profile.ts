import { readFileSync } from "node:fs";
import { ConfigError, unknownNameMessage } from "../errors.ts";
import { gpuNames, loadCatalog, resolveGpu, type Catalog } from "./catalog.ts";
import type { IterationShape, IterationTimeModel, PerformanceModel } from "./performance.ts";
import {
  RooflinePerformanceModel,
  type RooflineIterationModel,
  type RooflineParamsInput,
} from "./roofline.ts";

/**
 * Profile performance model: measured iteration times (a CSV written by profiler/profile_llm.py or
 * converted from another source), interpolated over batch x tokens and extended with the roofline.
 */

export const PROFILE_COLUMNS = ["model", "gpu", "tp", "phase", "batch", "seq_len", "context", "ms"] as const;

export type Phase = "prefill" | "decode";

/** One measured iteration: `tokens` is seq_len (tokens per sequence) for prefill, context for decode. */
export interface ProfileRow {
  readonly model: string;
  /** The catalog's GPU name (aliases and processor names in the file are resolved). */
  readonly gpu: string;
  readonly tp: number;
  readonly phase: Phase;
  readonly batch: number;
  readonly tokens: number;
  readonly ms: number;
  /** 1-based line in the source file. */
  readonly line: number;
}

/** The iteration a profile row measured: `batch` prompts of `tokens` each, or `batch` decodes at context `tokens`. */
export function rowShape(phase: Phase, batch: number, tokens: number): IterationShape {
  return phase === "prefill"
    ? { prefillTokens: batch * tokens, numPrefill: batch, numDecode: 0, decodeContextTokens: 0 }
    : { prefillTokens: 0, numPrefill: 0, numDecode: batch, decodeContextTokens: batch * tokens };
}

/** Parses a profile CSV; errors name the file, the line and the column. Lines starting with # are comments. */
export function parseProfileCsv(
  text: string,
  source: string,
  catalog: Catalog = loadCatalog(),
): ProfileRow[] {
  const lines = text.split(/\r?\n/);
  const headerIndex = lines.findIndex((line) => line.trim() !== "" && !line.startsWith("#"));
  if (headerIndex < 0)
    throw new ConfigError(`${source}: empty profile (expected a header: ${PROFILE_COLUMNS.join(",")})`);
  const header = lines[headerIndex]!.split(",").map((cell) => cell.trim());
  const index = {} as Record<(typeof PROFILE_COLUMNS)[number], number>;
  for (const column of PROFILE_COLUMNS) {
    const at = header.indexOf(column);
    if (at < 0)
      throw new ConfigError(
        `${source}:${headerIndex + 1}: missing column "${column}" (header: ${header.join(",")}; expected ${PROFILE_COLUMNS.join(",")})`,
      );
    index[column] = at;
  }
  const rows: ProfileRow[] = [];
  for (let i = headerIndex + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "" || line.startsWith("#")) continue;
    const lineNo = i + 1;
    const cells = line.split(",").map((cell) => cell.trim());
    if (cells.length !== header.length)
      throw new ConfigError(`${source}:${lineNo}: expected ${header.length} columns, got ${cells.length}`);
    const bad = (column: (typeof PROFILE_COLUMNS)[number], expected: string): ConfigError =>
      new ConfigError(
        `${source}:${lineNo}: column ${column} (${index[column] + 1}): expected ${expected}, got "${cells[index[column]]}"`,
      );
    const cell = (column: (typeof PROFILE_COLUMNS)[number]): string => cells[index[column]]!;
    const integer = (column: (typeof PROFILE_COLUMNS)[number], min: number): number => {
      const value = Number(cell(column));
      if (cell(column) === "" || !Number.isInteger(value) || value < min)
        throw bad(column, min === 0 ? "a non-negative integer" : `an integer >= ${min}`);
      return value;
    };

    const model = cell("model");
    if (!catalog.models.has(model))
      throw new ConfigError(
        `${source}:${lineNo}: column model (${index.model + 1}): ${unknownNameMessage("model", model, [...catalog.models.keys()])}`,
      );
    const gpu = resolveGpu(catalog, cell("gpu"));
    if (gpu === undefined)
      throw new ConfigError(
        `${source}:${lineNo}: column gpu (${index.gpu + 1}): ${unknownNameMessage("GPU", cell("gpu"), gpuNames(catalog))}`,
      );
    const phase = cell("phase");
    if (phase !== "prefill" && phase !== "decode") throw bad("phase", "prefill or decode");
    const tp = integer("tp", 1);
    const batch = integer("batch", 1);
    let tokens: number;
    if (phase === "prefill") {
      tokens = integer("seq_len", 1);
      // Prefill over an existing context (chunked prefill) is not modelled: leave context empty.
      if (cell("context") !== "" && Number(cell("context")) !== 0)
        throw bad("context", "an empty cell or 0 on a prefill row");
    } else {
      tokens = integer("context", 1);
      if (cell("seq_len") !== "" && Number(cell("seq_len")) !== 1)
        throw bad("seq_len", "an empty cell or 1 on a decode row");
    }
    const ms = Number(cell("ms"));
    if (cell("ms") === "" || !Number.isFinite(ms) || ms <= 0)
      throw bad("ms", "a positive number of milliseconds");
    rows.push({ model, gpu: gpu.name, tp, phase, batch, tokens, ms, line: lineNo });
  }
  return rows;
}

export function readProfileCsv(path: string, catalog: Catalog = loadCatalog()): ProfileRow[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(
      `cannot read profile ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return parseProfileCsv(text, path, catalog);
}

/** Writes rows in the profile CSV format (a `# comment` header line per entry of `comments`). */
export function formatProfileCsv(
  rows: readonly Omit<ProfileRow, "line">[],
  comments: readonly string[] = [],
): string {
  const lines = comments.map((comment) => `# ${comment}`);
  lines.push(PROFILE_COLUMNS.join(","));
  for (const row of rows) {
    const prefill = row.phase === "prefill";
    lines.push(
      [
        row.model,
        row.gpu,
        row.tp,
        row.phase,
        row.batch,
        prefill ? row.tokens : "",
        prefill ? "" : row.tokens,
        row.ms,
      ].join(","),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Median, the mean of the two middle values for even counts. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

// ---- the measured grid ----------------------------------------------------------------------------

/**
 * Measured/roofline time ratios on the measured (batch, tokens) points of one phase, as rows of equal
 * batch. `ratio` interpolates linearly along tokens within a row and linearly in batch between the
 * two rows around the query: on a full grid that is bilinear interpolation. Rows may cover different
 * token ranges (profiles are often a cross: one batch swept over tokens, one token count swept over
 * batch); each row holds its end values outside its own range.
 */
export class RatioGrid {
  private constructor(
    readonly batches: Float64Array,
    readonly tokens: readonly Float64Array[],
    readonly ratios: readonly Float64Array[],
  ) {}

  static fromPoints(points: readonly { batch: number; tokens: number; ratio: number }[]): RatioGrid {
    const byBatch = new Map<number, { tokens: number; ratio: number }[]>();
    for (const point of points) {
      let row = byBatch.get(point.batch);
      if (row === undefined) byBatch.set(point.batch, (row = []));
      row.push(point);
    }
    const batches = [...byBatch.keys()].sort((a, b) => a - b);
    const rows = batches.map((batch) => byBatch.get(batch)!.sort((a, b) => a.tokens - b.tokens));
    return new RatioGrid(
      Float64Array.from(batches),
      rows.map((row) => Float64Array.from(row, (p) => p.tokens)),
      rows.map((row) => Float64Array.from(row, (p) => p.ratio)),
    );
  }

  /** Whether (batch, tokens) lies inside the measured range (no row or batch end value is held). */
  contains(batch: number, tokens: number): boolean {
    const b = this.batches;
    if (batch < b[0]! || batch > b[b.length - 1]!) return false;
    const hi = upperIndex(b, batch);
    const rows = b[hi - 1] === batch || hi === b.length ? [hi - 1] : [hi - 1, hi];
    return rows.every((row) => {
      const t = this.tokens[row]!;
      return tokens >= t[0]! && tokens <= t[t.length - 1]!;
    });
  }

  ratio(batch: number, tokens: number): number {
    const b = this.batches;
    const n = b.length;
    if (batch <= b[0]!) return this.rowRatio(0, tokens);
    if (batch >= b[n - 1]!) return this.rowRatio(n - 1, tokens);
    const hi = upperIndex(b, batch);
    const lo = hi - 1;
    const w = (batch - b[lo]!) / (b[hi]! - b[lo]!);
    const below = this.rowRatio(lo, tokens);
    return w === 0 ? below : below + w * (this.rowRatio(hi, tokens) - below);
  }

  private rowRatio(row: number, tokens: number): number {
    const t = this.tokens[row]!;
    const r = this.ratios[row]!;
    const n = t.length;
    if (tokens <= t[0]!) return r[0]!;
    if (tokens >= t[n - 1]!) return r[n - 1]!;
    const hi = upperIndex(t, tokens);
    const lo = hi - 1;
    const w = (tokens - t[lo]!) / (t[hi]! - t[lo]!);
    return r[lo]! + w * (r[hi]! - r[lo]!);
  }
}

/** First index whose value exceeds x (values sorted ascending, x within range). */
function upperIndex(values: Float64Array, x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- the performance model ------------------------------------------------------------------------

/**
 * What happens outside the measured range. anchored: the roofline scaled by the measured/roofline ratio
 * at the nearest measured edge (continuous, keeps the measured level). roofline: the plain roofline.
 */
export type OutsideMode = "anchored" | "roofline";

export interface ProfileOptions {
  readonly roofline?: RooflineParamsInput;
  readonly outside?: OutsideMode;
  readonly catalog?: Catalog;
}

/**
 * Time = roofline(shape) x ratio, where ratio interpolates measured/roofline over the measured grid of
 * the iteration's phase. At measured points this returns the measurement (the median of repeats);
 * between them the roofline supplies the shape of the curve and the measurements its level. Mixed
 * batches weight the prefill and decode ratios by the roofline time of each part. Combinations the
 * profile does not cover use the roofline alone.
 */
class ProfileIterationModel implements IterationTimeModel {
  private readonly prefillPart = { prefillTokens: 0, numPrefill: 0, numDecode: 0, decodeContextTokens: 0 };
  private readonly decodePart = { prefillTokens: 0, numPrefill: 0, numDecode: 0, decodeContextTokens: 0 };

  constructor(
    readonly roofline: RooflineIterationModel,
    readonly prefill: RatioGrid | undefined,
    readonly decode: RatioGrid | undefined,
    private readonly outside: OutsideMode,
  ) {}

  private phaseRatio(grid: RatioGrid | undefined, batch: number, tokens: number): number {
    if (grid === undefined) return 1;
    if (this.outside === "roofline" && !grid.contains(batch, tokens)) return 1;
    return grid.ratio(batch, tokens);
  }

  iterationTime(shape: IterationShape): number {
    const base = this.roofline.iterationTime(shape);
    if (shape.numDecode === 0) {
      if (shape.numPrefill === 0) return base;
      return base * this.phaseRatio(this.prefill, shape.numPrefill, shape.prefillTokens / shape.numPrefill);
    }
    const decodeRatio = this.phaseRatio(
      this.decode,
      shape.numDecode,
      shape.decodeContextTokens / shape.numDecode,
    );
    if (shape.numPrefill === 0) return base * decodeRatio;
    const prefillRatio = this.phaseRatio(
      this.prefill,
      shape.numPrefill,
      shape.prefillTokens / shape.numPrefill,
    );
    const p = this.prefillPart;
    p.prefillTokens = shape.prefillTokens;
    p.numPrefill = shape.numPrefill;
    const d = this.decodePart;
    d.numDecode = shape.numDecode;
    d.decodeContextTokens = shape.decodeContextTokens;
    const prefillTime = this.roofline.iterationTime(p);
    const decodeTime = this.roofline.iterationTime(d);
    return (base * (prefillRatio * prefillTime + decodeRatio * decodeTime)) / (prefillTime + decodeTime);
  }

  unloaded(promptTokens: number): { ttft_s: number; tbt_s: number } {
    return {
      ttft_s: this.iterationTime(rowShape("prefill", 1, promptTokens)),
      tbt_s: this.iterationTime(rowShape("decode", 1, promptTokens)),
    };
  }
}

export class ProfilePerformanceModel implements PerformanceModel {
  readonly name = "profile";
  readonly roofline: RooflinePerformanceModel;
  readonly rows: readonly ProfileRow[];
  private readonly outside: OutsideMode;
  private readonly models = new Map<string, IterationTimeModel>();
  /** Rows per (model, GPU, TP) key. */
  private readonly groups = new Map<string, ProfileRow[]>();

  /** `profile`: a CSV path, or rows already parsed (tests, held-out evaluation). */
  constructor(
    profile: string | readonly ProfileRow[],
    readonly options: ProfileOptions = {},
  ) {
    const catalog = options.catalog ?? loadCatalog();
    this.rows = typeof profile === "string" ? readProfileCsv(profile, catalog) : profile;
    this.roofline = new RooflinePerformanceModel(options.roofline, catalog);
    this.outside = options.outside ?? "anchored";
    for (const row of this.rows) {
      const key = groupKey(row.model, row.gpu, row.tp);
      let group = this.groups.get(key);
      if (group === undefined) this.groups.set(key, (group = []));
      group.push(row);
    }
  }

  /** Whether the profile has measurements for this combination (else it is the roofline alone). */
  covers(model: string, hardware: string, tensorParallelism: number): boolean {
    const gpu = resolveGpu(this.roofline.catalog, hardware);
    return gpu !== undefined && this.groups.has(groupKey(model, gpu.name, tensorParallelism));
  }

  forInstance(model: string, hardware: string, tensorParallelism: number): IterationTimeModel {
    const key = `${model}|${hardware}|${tensorParallelism}`;
    let iterationModel = this.models.get(key);
    if (iterationModel === undefined) {
      const roofline = this.roofline.forInstance(model, hardware, tensorParallelism);
      const rows = this.groups.get(groupKey(model, roofline.gpu.name, tensorParallelism)) ?? [];
      iterationModel = new ProfileIterationModel(
        roofline,
        ratioGrid(roofline, rows, "prefill"),
        ratioGrid(roofline, rows, "decode"),
        this.outside,
      );
      this.models.set(key, iterationModel);
    }
    return iterationModel;
  }
}

function groupKey(model: string, gpu: string, tp: number): string {
  return `${model}|${gpu}|${tp}`;
}

/** Medians of repeated measurements per (batch, tokens), divided by the roofline's time there. */
function ratioGrid(
  roofline: RooflineIterationModel,
  rows: readonly ProfileRow[],
  phase: Phase,
): RatioGrid | undefined {
  const repeats = new Map<string, { batch: number; tokens: number; ms: number[] }>();
  for (const row of rows) {
    if (row.phase !== phase) continue;
    const key = `${row.batch}|${row.tokens}`;
    let point = repeats.get(key);
    if (point === undefined) repeats.set(key, (point = { batch: row.batch, tokens: row.tokens, ms: [] }));
    point.ms.push(row.ms);
  }
  if (repeats.size === 0) return undefined;
  return RatioGrid.fromPoints(
    [...repeats.values()].map(({ batch, tokens, ms }) => ({
      batch,
      tokens,
      ratio: median(ms) / 1000 / roofline.iterationTime(rowShape(phase, batch, tokens)),
    })),
  );
}

// ---- converting upstream's measured table ---------------------------------------------------------

/**
 * Converts rows of splitwise-sim's perf_model.csv (model, hardware, prompt_size, batch_size,
 * token_size, prompt_time, token_time, tensor_parallel) into profile rows, one per measured point
 * (median of the repeats): prefill = batch_size prompts of prompt_size tokens (prompt_time); decode =
 * batch_size decodes at the mean context of the generation, prompt_size + token_size / 2 (token_time is
 * the mean decode-step time over the token_size generated tokens).
 */
export function splitwiseTableToProfile(
  text: string,
  filter: { model: string; hardware: string; tp: number },
  gpu: string,
): Omit<ProfileRow, "line">[] {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? "").split(",");
  const col = (name: string): number => {
    const at = header.indexOf(name);
    if (at < 0) throw new ConfigError(`splitwise perf table: missing column "${name}"`);
    return at;
  };
  const [cModel, cHw, cPrompt, cBatch, cToken, cPromptTime, cTokenTime, cTp] = [
    "model",
    "hardware",
    "prompt_size",
    "batch_size",
    "token_size",
    "prompt_time",
    "token_time",
    "tensor_parallel",
  ].map(col) as [number, number, number, number, number, number, number, number];
  const points = new Map<string, { phase: Phase; batch: number; tokens: number; ms: number[] }>();
  const add = (phase: Phase, batch: number, tokens: number, ms: number): void => {
    const key = `${phase}|${batch}|${tokens}`;
    let point = points.get(key);
    if (point === undefined) points.set(key, (point = { phase, batch, tokens, ms: [] }));
    point.ms.push(ms);
  };
  for (const line of lines.slice(1)) {
    if (line.trim() === "") continue;
    const cells = line.split(",");
    if (cells[cModel] !== filter.model || cells[cHw] !== filter.hardware || Number(cells[cTp]) !== filter.tp)
      continue;
    const prompt = Number(cells[cPrompt]);
    const batch = Number(cells[cBatch]);
    const generated = Number(cells[cToken]);
    add("prefill", batch, prompt, Number(cells[cPromptTime]));
    add("decode", batch, prompt + generated / 2, Number(cells[cTokenTime]));
  }
  const phaseOrder = (phase: Phase): number => (phase === "prefill" ? 0 : 1);
  return [...points.values()]
    .sort((a, b) => phaseOrder(a.phase) - phaseOrder(b.phase) || a.batch - b.batch || a.tokens - b.tokens)
    .map(({ phase, batch, tokens, ms }) => ({
      model: filter.model,
      gpu,
      tp: filter.tp,
      phase,
      batch,
      tokens,
      ms: median(ms),
    }));
}
