import { WorkloadError } from "./errors.ts";

const MAX_TOKENS = 2_147_483_647; // lengths are kept in Int32Arrays when sampled from a trace

/**
 * Splits one CSV line into field bounds and parses fields in place, so a row costs no arrays and
 * no substrings on the happy path. Quoting is not supported: none of the trace formats uses it.
 */
export class CsvRow {
  /** Number of fields in the current line. */
  count = 0;
  private text = "";
  private line = 0;
  private starts = new Int32Array(16);
  private ends = new Int32Array(16);

  constructor(readonly file: string) {}

  split(text: string, line: number): void {
    this.text = text;
    this.line = line;
    let count = 0;
    let start = 0;
    for (;;) {
      if (count === this.starts.length) this.grow();
      const comma = text.indexOf(",", start);
      this.starts[count] = start;
      this.ends[count] = comma === -1 ? text.length : comma;
      count++;
      if (comma === -1) break;
      start = comma + 1;
    }
    this.count = count;
  }

  /** Raw text of field `index` (which must exist). */
  field(index: number): string {
    return this.text.slice(this.starts[index], this.ends[index]);
  }

  startOf(index: number): number {
    return this.starts[index]!;
  }

  endOf(index: number): number {
    return this.ends[index]!;
  }

  /** A token count: a positive integer (also written as a float such as `4096.0`). */
  positiveInteger(index: number, column: string, zeroHint: string): number {
    const start = this.starts[index]!;
    const end = this.ends[index]!;
    let value = 0;
    let position = start;
    for (; position < end; position++) {
      const digit = this.text.charCodeAt(position) - 48;
      if (digit < 0 || digit > 9 || value > 214_748_364) break;
      value = value * 10 + digit;
    }
    if (position === end && end > start && value >= 1 && value <= MAX_TOKENS) return value;
    const raw = this.field(index);
    const parsed = raw.trim() === "" ? Number.NaN : Number(raw.trim());
    return checkPositiveInteger(parsed, `"${raw}"`, this.at(column), zeroHint);
  }

  /** A non-negative integer (a request id). */
  nonNegativeInteger(index: number, column: string): number {
    const raw = this.field(index);
    const value = Number(raw.trim());
    if (raw.trim() === "" || !Number.isSafeInteger(value) || value < 0) {
      throw new WorkloadError(this.at(column), `expected a non-negative integer, got "${raw}"`);
    }
    return value;
  }

  /** A finite number (a time stamp in seconds). */
  finiteNumber(index: number, column: string): number {
    const raw = this.field(index);
    const value = Number(raw.trim());
    if (raw.trim() === "" || Number.isNaN(value)) {
      throw new WorkloadError(this.at(column), `expected a number, got "${raw}"`);
    }
    if (!Number.isFinite(value))
      throw new WorkloadError(this.at(column), `expected a finite number, got "${raw}"`);
    return value;
  }

  /** Throws unless the line has a field at `index` (named `column`). */
  require(index: number, column: string): void {
    if (index >= this.count) {
      throw new WorkloadError(
        this.at(column),
        `missing value: the line has ${this.count} columns, expected at least ${index + 1}`,
      );
    }
  }

  at(column: string): { file: string; line: number; field: string } {
    return { file: this.file, line: this.line, field: column };
  }

  private grow(): void {
    const starts = new Int32Array(this.starts.length * 2);
    const ends = new Int32Array(this.ends.length * 2);
    starts.set(this.starts);
    ends.set(this.ends);
    this.starts = starts;
    this.ends = ends;
  }
}

/**
 * Shared by CSV and JSONL readers: a token count must be an integer in [1, 2^31 - 1]. `shown` is
 * the value as the file wrote it, already quoted, for the message.
 */
export function checkPositiveInteger(
  value: unknown,
  shown: string,
  location: { file: string; line: number; field: string; fieldKind?: "column" | "field" },
  zeroHint: string,
): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new WorkloadError(location, `expected a positive integer, got ${shown}`);
  }
  if (value < 1) throw new WorkloadError(location, `expected a positive integer, got ${shown}: ${zeroHint}`);
  if (value > MAX_TOKENS)
    throw new WorkloadError(location, `${shown} tokens is more than the supported ${MAX_TOKENS}`);
  return value;
}

/**
 * Finds columns by header name (case-insensitive, surrounding spaces and quotes ignored). Extra
 * columns are fine; a missing required one names the file, the format and every expected column.
 */
export function locateColumns<Required extends string, Optional extends string>(
  header: string,
  file: string,
  line: number,
  formatName: string,
  required: readonly Required[],
  optional: readonly Optional[] = [],
): Record<Required, number> & Partial<Record<Optional, number>> {
  const names = header.split(",").map((name) =>
    name
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .trim(),
  );
  const lowered = names.map((name) => name.toLowerCase());
  const located: Record<string, number> = {};
  for (const column of [...required, ...optional]) {
    const index = lowered.indexOf(column.toLowerCase());
    if (index !== -1) located[column] = index;
  }
  const missing = required.filter((column) => located[column] === undefined);
  if (missing.length > 0) {
    const expected = [...required, ...optional.map((column) => `${column} (optional)`)].join(", ");
    throw new WorkloadError(
      { file, line },
      `missing column${missing.length > 1 ? "s" : ""} ${missing.map((column) => `"${column}"`).join(", ")}: ` +
        `a ${formatName} trace needs a header with the columns ${expected}; this header has ${names.join(", ")}`,
    );
  }
  return located as Record<Required, number> & Partial<Record<Optional, number>>;
}
