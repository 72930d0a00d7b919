import { UsageError } from "../errors.ts";
import { WorkloadError } from "./errors.ts";
import { LineReader } from "./line-reader.ts";
import type { RequestSource, TraceRequest } from "./types.ts";

/** Options every trace reader accepts. Times are seconds. */
export interface TraceReaderOptions {
  /** Arrival time of the trace's time origin (or of `start_s` when windowed). Default 0. */
  readonly offset_s?: number;
  /** Stop after this many requests. */
  readonly limit?: number;
  /**
   * Multiplies the time between requests (and from the origin to the first one): 0.5 replays the
   * trace at twice the rate. Default 1.
   */
  readonly time_scale?: number;
  /** Skip requests before this raw trace time. Arrivals are re-based so `start_s` maps to `offset_s`. */
  readonly start_s?: number;
  /** Stop at the first request at or after this raw trace time. */
  readonly end_s?: number;
  /** Read size in bytes (tests use tiny chunks). */
  readonly chunkSize?: number;
}

interface ResolvedOptions {
  readonly offset_s: number;
  readonly limit: number;
  readonly time_scale: number;
  readonly start_s: number;
  readonly end_s: number;
}

/** What a format-specific reader tells the base class about itself. */
export interface TraceFormatInfo {
  /** Column or key holding the arrival time, named in ordering errors. */
  readonly timeField: string;
  readonly fieldKind: "column" | "field";
  /** What the raw times count from, when not the file's own numbers (Azure: "seconds from the first row"). */
  readonly timeOrigin?: string;
}

/**
 * Streams requests from a trace file: the subclass parses one line into the `row*` fields, and this
 * class skips blank lines, checks the arrival order and applies offset, time scale, window and limit.
 * "Raw trace time" is the subclass's `rowTime_s`: seconds since the first row for Azure traces, the
 * file's own seconds for splitwise and Mooncake traces.
 */
export abstract class TraceReader implements RequestSource {
  readonly description: string;
  protected readonly lines: LineReader;
  protected rowId = 0;
  protected rowTime_s = 0;
  protected rowPrompt = 0;
  protected rowOutput = 0;
  protected rowHashIds: readonly number[] | undefined = undefined;
  private readonly options: ResolvedOptions;
  private previousTime_s = Number.NEGATIVE_INFINITY;
  private previousLine = 0;
  private emitted = 0;
  private finished = false;

  protected constructor(
    readonly file: string,
    options: TraceReaderOptions,
    private readonly format: TraceFormatInfo,
  ) {
    this.options = resolveTraceOptions(options);
    this.lines = new LineReader(
      file,
      options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize },
    );
    this.description = file;
  }

  /** Parses one non-blank line into the row fields, throwing WorkloadError on bad values. */
  protected abstract parseRow(text: string, line: number): void;

  next(): TraceRequest | undefined {
    if (this.finished) return undefined;
    try {
      return this.advance();
    } catch (error) {
      this.close();
      throw error;
    }
  }

  private advance(): TraceRequest | undefined {
    if (this.emitted >= this.options.limit) return this.finish();
    for (;;) {
      const text = this.lines.readLine();
      if (text === undefined) return this.finish();
      if (isBlank(text)) continue;
      const line = this.lines.lineNumber;
      this.parseRow(text, line);
      const time_s = this.rowTime_s;
      this.checkTime(time_s, line);
      this.previousTime_s = time_s;
      this.previousLine = line;
      if (time_s < this.options.start_s) continue;
      // Arrivals never decrease, so nothing after this line can fall inside the window.
      if (time_s >= this.options.end_s) return this.finish();
      this.emitted++;
      const arrival_s = this.options.offset_s + (time_s - this.options.start_s) * this.options.time_scale;
      const hashIds = this.rowHashIds;
      if (hashIds === undefined) {
        return { id: this.rowId, arrival_s, prompt_tokens: this.rowPrompt, output_tokens: this.rowOutput };
      }
      return {
        id: this.rowId,
        arrival_s,
        prompt_tokens: this.rowPrompt,
        output_tokens: this.rowOutput,
        hash_ids: hashIds,
      };
    }
  }

  close(): void {
    this.finished = true;
    this.lines.close();
  }

  /** The first non-blank line (the CSV header), or an error for an empty file. */
  protected readHeader(expected: string): { text: string; line: number } {
    for (let text = this.lines.readLine(); text !== undefined; text = this.lines.readLine()) {
      if (!isBlank(text)) return { text, line: this.lines.lineNumber };
    }
    this.close();
    throw new WorkloadError(
      { file: this.file },
      `the file is empty; expected a header line with the columns ${expected}`,
    );
  }

  private finish(): undefined {
    this.close();
    return undefined;
  }

  private checkTime(time_s: number, line: number): void {
    const where = { file: this.file, line, field: this.format.timeField, fieldKind: this.format.fieldKind };
    if (!Number.isFinite(time_s))
      throw new WorkloadError(where, `arrival time must be finite, got ${time_s}`);
    if (time_s < this.previousTime_s) {
      throw new WorkloadError(
        where,
        `arrival goes backwards (${formatSeconds(time_s)} s after ${formatSeconds(this.previousTime_s)} s on line ${this.previousLine}` +
          `${this.format.timeOrigin === undefined ? "" : `, in ${this.format.timeOrigin}`}): ` +
          `the simulator needs requests in non-decreasing arrival order, so sort the trace by arrival time first`,
      );
    }
    if (time_s < 0)
      throw new WorkloadError(where, `arrival time must not be negative, got ${formatSeconds(time_s)} s`);
  }
}

function isBlank(text: string): boolean {
  return text.length === 0 || (text.charCodeAt(0) <= 32 && text.trim().length === 0);
}

function formatSeconds(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(6).replace(/0+$/, "");
}

/** Checks the common options and fills in defaults; bad values are the user's config, so UsageError. */
export function resolveTraceOptions(options: TraceReaderOptions): ResolvedOptions {
  const offset_s = options.offset_s ?? 0;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const time_scale = options.time_scale ?? 1;
  const start_s = options.start_s ?? 0;
  const end_s = options.end_s ?? Number.POSITIVE_INFINITY;
  if (!Number.isFinite(offset_s) || offset_s < 0)
    throw new UsageError(`offset_s must be a non-negative number, got ${offset_s}`);
  if (options.limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new UsageError(`limit must be a non-negative integer, got ${limit}`);
  }
  if (!Number.isFinite(time_scale) || time_scale <= 0)
    throw new UsageError(`time_scale must be a positive number, got ${time_scale}`);
  if (!Number.isFinite(start_s) || start_s < 0)
    throw new UsageError(`start_s must be a non-negative number, got ${start_s}`);
  if (Number.isNaN(end_s) || end_s <= start_s)
    throw new UsageError(`end_s (${end_s}) must be greater than start_s (${start_s})`);
  return { offset_s, limit, time_scale, start_s, end_s };
}
