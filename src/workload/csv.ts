import { WorkloadError } from "./errors.ts";
import { FORMAT_TITLES, firstLineHint } from "./first-line.ts";
import type { TraceFormat } from "./trace-format.ts";

const MAX_TOKENS = 2_147_483_647; // lengths are kept in Int32Arrays when sampled from a trace

/**
 * Number() reads a plain decimal (`12`, `4096.0`, `.5`, `1e3`), but also `0x10`, `0b11` and
 * `0o17`, which would read a mangled cell as some other number: those prefixes are the only
 * non-decimal finite forms it takes (after trimming), so this refuses them without a regex.
 */
function parseDecimal(trimmed: string): number {
  if (trimmed.length > 1 && trimmed.charCodeAt(0) === 48) {
    const radix = trimmed.charCodeAt(1) | 32;
    if (radix === 120 || radix === 98 || radix === 111) return Number.NaN;
  }
  return trimmed === "" ? Number.NaN : Number(trimmed);
}

/**
 * Splits one CSV line into field bounds and parses fields in place, so a row costs no arrays and
 * no substrings on the happy path. Quoted values (RFC 4180: `"a, b"`, `"say ""hi"""`), as R's
 * write.csv and spreadsheet exports write them, are unquoted on a slower path taken only by lines
 * that contain a `"`; a quoted value cannot span lines.
 */
export class CsvRow {
  /** Number of fields in the current line. */
  count = 0;
  /** The current line, with quoted values unquoted: the field bounds index this text. */
  text = "";
  /** Column names from the header, for messages about a line's quoting (set by the reader). */
  names: readonly string[] = [];
  private line = 0;
  private starts = new Int32Array(16);
  private ends = new Int32Array(16);

  constructor(readonly file: string) {}

  split(text: string, line: number): void {
    this.line = line;
    if (text.indexOf('"') !== -1) {
      this.splitQuoted(text);
      return;
    }
    this.text = text;
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

  /**
   * Splits a line with quotes: the fields are copied, unquoted, into a new text. A quote inside an
   * unquoted value is kept as it is (as pandas does); spaces around a quoted value are dropped.
   */
  private splitQuoted(text: string): void {
    const length = text.length;
    let out = "";
    let count = 0;
    let position = 0;
    for (;;) {
      if (count === this.starts.length) this.grow();
      let open = position;
      while (open < length && isSpace(text.charCodeAt(open))) open++;
      if (open < length && text.charCodeAt(open) === 34) {
        this.starts[count] = out.length;
        let cursor = open + 1;
        for (;;) {
          const quote = text.indexOf('"', cursor);
          if (quote === -1) {
            throw this.quoteError(
              count,
              "a quoted value is not closed on this line (values spanning several lines are not supported)",
            );
          }
          out += text.slice(cursor, quote);
          cursor = quote + 1;
          if (text.charCodeAt(cursor) !== 34) break;
          out += '"'; // "" inside quotes is one quote
          cursor++;
        }
        this.ends[count] = out.length;
        while (cursor < length && isSpace(text.charCodeAt(cursor))) cursor++;
        count++;
        if (cursor === length) break;
        if (text.charCodeAt(cursor) !== 44) {
          throw this.quoteError(
            count - 1,
            `unexpected text after the closing quote: ${JSON.stringify(text.slice(cursor, cursor + 20))} ` +
              `(a quote inside a quoted value is written twice: "")`,
          );
        }
        out += ",";
        position = cursor + 1;
      } else {
        const comma = text.indexOf(",", position);
        const end = comma === -1 ? length : comma;
        this.starts[count] = out.length;
        out += text.slice(position, end);
        this.ends[count] = out.length;
        count++;
        if (comma === -1) break;
        out += ",";
        position = comma + 1;
      }
    }
    this.text = out;
    this.count = count;
  }

  /** An error about value `index` of the line, named by its column when the header names it. */
  private quoteError(index: number, detail: string): WorkloadError {
    const name = this.names[index];
    return name === undefined || name === ""
      ? new WorkloadError({ file: this.file, line: this.line }, `value ${index + 1}: ${detail}`)
      : new WorkloadError(this.at(name), detail);
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
    // "4096.0", as pandas writes an integer column that had a missing value.
    if (position < end && this.text.charCodeAt(position) === 46) {
      let zero = position + 1;
      while (zero < end && this.text.charCodeAt(zero) === 48) zero++;
      if (zero === end) position = end;
    }
    if (position === end && end > start && value >= 1 && value <= MAX_TOKENS) return value;
    const raw = this.field(index);
    return checkPositiveInteger(parseDecimal(raw.trim()), `"${raw}"`, this.at(column), zeroHint);
  }

  /** A non-negative integer (a request id). */
  nonNegativeInteger(index: number, column: string): number {
    const raw = this.field(index);
    const value = parseDecimal(raw.trim());
    if (Number.isInteger(value) && value >= 0 && !Number.isSafeInteger(value)) {
      throw new WorkloadError(
        this.at(column),
        `"${raw}" is more than ${Number.MAX_SAFE_INTEGER}, the largest integer kept exactly; renumber the ids`,
      );
    }
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new WorkloadError(this.at(column), `expected a non-negative integer, got "${raw}"`);
    }
    return value;
  }

  /** A finite number (a time stamp in seconds). */
  finiteNumber(index: number, column: string): number {
    const raw = this.field(index);
    const value = parseDecimal(raw.trim());
    if (Number.isNaN(value)) throw new WorkloadError(this.at(column), `expected a number, got "${raw}"`);
    if (!Number.isFinite(value))
      throw new WorkloadError(this.at(column), `expected a finite number, got "${raw}"`);
    return value;
  }

  /** Throws unless the line has a field at `index` (named `column`). */
  require(index: number, column: string): void {
    if (index >= this.count) {
      const comment = this.text.trimStart().startsWith("#")
        ? " (comment lines are not supported in a trace: delete the line)"
        : "";
      throw new WorkloadError(
        this.at(column),
        `missing value: the line has ${this.count} ${this.count === 1 ? "column" : "columns"}, ` +
          `expected at least ${index + 1}${comment}`,
      );
    }
  }

  /**
   * Throws if the line has values beyond the header's `columns` (empty ones, as trailing commas
   * make, are fine): a comma inside an unquoted value shifts every value after it, so the line's
   * values cannot be trusted to be in their columns.
   */
  requireWidth(columns: number): void {
    for (let index = columns; index < this.count; index++) {
      if (this.field(index).trim() === "") continue;
      throw new WorkloadError(
        { file: this.file, line: this.line },
        `the line has ${this.count} values but the header has ${columns} columns: ` +
          `a comma inside a value (a thousands separator as in 4,096, or text that needs quotes) ` +
          `shifts the values after it`,
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

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}

/**
 * Splits the header line into `row` and finds columns by name (case-insensitive, surrounding
 * spaces and quotes ignored); sets `row.names` and leaves `row.count` the header's width. Extra
 * columns are fine; a missing required one names the file, the format and every expected column,
 * and one named twice is an error (which of the two is meant is not clear).
 */
export function locateColumns<Required extends string, Optional extends string>(
  row: CsvRow,
  header: { text: string; line: number },
  format: TraceFormat,
  required: readonly Required[],
  optional: readonly Optional[] = [],
): Record<Required, number> & Partial<Record<Optional, number>> {
  const { file } = row;
  const line = header.line;
  try {
    row.split(header.text, line);
  } catch (error) {
    // A JSON line's quotes make no sense as CSV: say which format it is instead.
    const hint = firstLineHint(header.text, format);
    if (!(error instanceof WorkloadError) || hint === "") throw error;
    throw new WorkloadError({ file, line }, `not a CSV header${hint}`);
  }
  const names: string[] = [];
  for (let index = 0; index < row.count; index++) names.push(row.field(index).trim());
  const lowered = names.map((name) => name.toLowerCase());
  const located: Record<string, number> = {};
  for (const column of [...required, ...optional]) {
    const index = lowered.indexOf(column.toLowerCase());
    if (index === -1) continue;
    const again = lowered.indexOf(column.toLowerCase(), index + 1);
    if (again !== -1) {
      throw new WorkloadError(
        { file, line },
        `the header names column "${column}" twice (columns ${index + 1} and ${again + 1}); ` +
          `keep one, so that it is clear which to read`,
      );
    }
    located[column] = index;
  }
  const missing = required.filter((column) => located[column] === undefined);
  if (missing.length > 0) {
    const expected = [...required, ...optional.map((column) => `${column} (optional)`)].join(", ");
    throw new WorkloadError(
      { file, line },
      `missing column${missing.length > 1 ? "s" : ""} ${missing.map((column) => `"${column}"`).join(", ")}: ` +
        `${FORMAT_TITLES[format]} trace needs a header with the columns ${expected}; this header has ${names.join(", ")}` +
        firstLineHint(header.text, format),
    );
  }
  row.names = names;
  return located as Record<Required, number> & Partial<Record<Optional, number>>;
}
