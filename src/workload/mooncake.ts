import { checkPositiveInteger } from "./csv.ts";
import { firstLineHint } from "./first-line.ts";
import { WorkloadError } from "./errors.ts";
import { describeError } from "./line-reader.ts";
import { TraceReader, type TraceReaderOptions } from "./trace-reader.ts";

/**
 * Mooncake traces: JSON Lines of `{"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [...]}`.
 * Raw trace time is timestamp / 1000 seconds; ids are 0-based indices of the non-blank lines.
 */
export class MooncakeTraceReader extends TraceReader {
  private rowIndex = 0;

  constructor(path: string, options: TraceReaderOptions = {}) {
    super(path, options, { timeField: "timestamp", fieldKind: "field" });
  }

  protected parseRow(text: string, line: number): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      // On the first line, a CSV header means the format was set wrong.
      const hint = this.rowIndex === 0 ? firstLineHint(text, "mooncake") : "";
      const detail = text.trimStart().startsWith("{")
        ? `invalid JSON: ${describeError(error)}`
        : `expected one JSON object per line, got ${shorten(text)}`;
      throw new WorkloadError({ file: this.file, line }, detail + hint);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new WorkloadError(
        { file: this.file, line },
        `expected one JSON object per line, got ${shorten(text)}`,
      );
    }
    const record = parsed as Record<string, unknown>;
    const timestamp = record.timestamp;
    if (typeof timestamp !== "number") {
      throw new WorkloadError(
        this.at(line, "timestamp"),
        `expected a number of milliseconds, got ${show(timestamp)}`,
      );
    }
    this.rowTime_s = timestamp / 1000;
    this.rowPrompt = checkPositiveInteger(
      record.input_length,
      show(record.input_length),
      this.at(line, "input_length"),
      "a request needs at least one prompt token",
    );
    this.rowOutput = checkPositiveInteger(
      record.output_length,
      show(record.output_length),
      this.at(line, "output_length"),
      "every request generates at least one token (the simulator cannot run a request with 0)",
    );
    const hashIds = record.hash_ids;
    if (
      hashIds !== undefined &&
      !(Array.isArray(hashIds) && hashIds.every((hash) => Number.isInteger(hash)))
    ) {
      throw new WorkloadError(
        this.at(line, "hash_ids"),
        `expected an array of integers, got ${shorten(JSON.stringify(hashIds))}`,
      );
    }
    this.rowHashIds = hashIds as readonly number[] | undefined;
    this.rowId = this.rowIndex++;
  }

  private at(line: number, field: string): { file: string; line: number; field: string; fieldKind: "field" } {
    return { file: this.file, line, field, fieldKind: "field" };
  }
}

function show(value: unknown): string {
  // Values come from JSON.parse, so they always stringify back.
  return value === undefined ? "nothing" : JSON.stringify(value);
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
