import { WorkloadError } from "./errors.ts";
import { CsvRow, locateColumns } from "./csv.ts";
import { TraceReader, type TraceReaderOptions } from "./trace-reader.ts";

const TIMESTAMP = "TIMESTAMP";
const CONTEXT_TOKENS = "ContextTokens";
const GENERATED_TOKENS = "GeneratedTokens";
export const AZURE_COLUMNS = [TIMESTAMP, CONTEXT_TOKENS, GENERATED_TOKENS] as const;

/**
 * Azure LLM inference traces (`TIMESTAMP,ContextTokens,GeneratedTokens`): the 2023 conv/code traces
 * (`2023-11-16 18:15:46.6805900`) and the 2024 week-long ones (`2024-05-10 00:00:00.009930+00:00`).
 * Raw trace time is seconds since the first row; ids are 0-based row indices.
 */
export class AzureTraceReader extends TraceReader {
  private readonly row: CsvRow;
  private readonly timestampColumn: number;
  private readonly contextColumn: number;
  private readonly generatedColumn: number;
  private readonly lastColumn: number;
  /** Number of columns the header names: a line with more values has a shifted column. */
  private readonly headerColumns: number;
  private readonly timestamp = new TimestampParser();
  private firstSeconds = Number.NaN;
  private firstFraction = 0;
  private rowIndex = 0;

  constructor(path: string, options: TraceReaderOptions = {}) {
    super(path, options, {
      timeField: TIMESTAMP,
      fieldKind: "column",
      timeOrigin: "seconds from the first row",
    });
    this.row = new CsvRow(path);
    try {
      const header = this.readHeader(AZURE_COLUMNS.join(", "));
      const columns = locateColumns(this.row, header, "azure", AZURE_COLUMNS);
      this.headerColumns = this.row.count;
      this.timestampColumn = columns.TIMESTAMP;
      this.contextColumn = columns.ContextTokens;
      this.generatedColumn = columns.GeneratedTokens;
      this.lastColumn = Math.max(this.timestampColumn, this.contextColumn, this.generatedColumn);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  protected parseRow(text: string, line: number): void {
    const row = this.row;
    row.split(text, line);
    if (row.count <= this.lastColumn) {
      row.require(this.timestampColumn, TIMESTAMP);
      row.require(this.contextColumn, CONTEXT_TOKENS);
      row.require(this.generatedColumn, GENERATED_TOKENS);
    }
    if (row.count > this.headerColumns) row.requireWidth(this.headerColumns);
    if (!this.timestamp.parse(row.text, row.startOf(this.timestampColumn), row.endOf(this.timestampColumn))) {
      throw new WorkloadError(
        row.at(TIMESTAMP),
        `expected a timestamp like "2023-11-16 18:15:46.6805900", got "${row.field(this.timestampColumn)}"`,
      );
    }
    if (Number.isNaN(this.firstSeconds)) {
      this.firstSeconds = this.timestamp.seconds;
      this.firstFraction = this.timestamp.fraction;
    }
    // Whole seconds and the fraction are subtracted separately: epoch seconds as a double would
    // keep only about 7 fractional digits, and the reference replay agrees to 1e-9.
    this.rowTime_s =
      this.timestamp.seconds - this.firstSeconds + (this.timestamp.fraction - this.firstFraction);
    this.rowPrompt = row.positiveInteger(
      this.contextColumn,
      CONTEXT_TOKENS,
      "a request needs at least one prompt token",
    );
    this.rowOutput = row.positiveInteger(
      this.generatedColumn,
      GENERATED_TOKENS,
      "every request generates at least one token (the simulator cannot run a request with 0)",
    );
    this.rowId = this.rowIndex++;
  }
}

/**
 * Parses `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|±HH:MM|±HHMM]` into whole UTC epoch seconds and a
 * decimal fraction, by hand: Date.parse rounds to milliseconds and allocates, and this runs per row.
 */
export class TimestampParser {
  seconds = 0;
  fraction = 0;
  private cachedDate = -1;
  private cachedDayStart = 0;

  /** Parses text[start, end); false when it is not a timestamp. */
  parse(text: string, start: number, end: number): boolean {
    while (start < end && isBlankCode(text.charCodeAt(start))) start++;
    while (end > start && isBlankCode(text.charCodeAt(end - 1))) end--;
    if (end - start < 19) return false;
    const year = digits(text, start, 4);
    const month = digits(text, start + 5, 2);
    const day = digits(text, start + 8, 2);
    const hour = digits(text, start + 11, 2);
    const minute = digits(text, start + 14, 2);
    const second = digits(text, start + 17, 2);
    if ((year | month | day | hour | minute | second) < 0) return false;
    const separator = text.charCodeAt(start + 10);
    if (
      text.charCodeAt(start + 4) !== 45 ||
      text.charCodeAt(start + 7) !== 45 ||
      (separator !== 32 && separator !== 84) ||
      text.charCodeAt(start + 13) !== 58 ||
      text.charCodeAt(start + 16) !== 58
    ) {
      return false;
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
      return false;
    let position = start + 19;
    let fraction = 0;
    if (position < end && text.charCodeAt(position) === 46) {
      position++;
      let numerator = 0;
      let denominator = 1;
      const fractionStart = position;
      for (; position < end; position++) {
        const digit = text.charCodeAt(position) - 48;
        if (digit < 0 || digit > 9) break;
        // Beyond 15 digits a double cannot hold more anyway.
        if (denominator < 1e15) {
          numerator = numerator * 10 + digit;
          denominator *= 10;
        }
      }
      if (position === fractionStart) return false;
      fraction = numerator / denominator;
    }
    let zoneOffset_s = 0;
    if (position < end) {
      const sign = text.charCodeAt(position);
      if (sign === 90 && position + 1 === end) {
        // "Z": UTC, nothing to add.
      } else if (sign === 43 || sign === 45) {
        // ±HH, ±HHMM or ±HH:MM (ISO 8601).
        const zoneHours = digits(text, position + 1, 2);
        const hoursOnly = position + 3 === end;
        const colon = text.charCodeAt(position + 3) === 58 ? 1 : 0;
        const zoneMinutes = hoursOnly ? 0 : digits(text, position + 3 + colon, 2);
        if (zoneHours < 0 || zoneMinutes < 0 || (!hoursOnly && position + 5 + colon !== end)) return false;
        zoneOffset_s = (sign === 43 ? 1 : -1) * (zoneHours * 3600 + zoneMinutes * 60);
      } else {
        return false;
      }
    }
    const dateKey = year * 10000 + month * 100 + day;
    if (dateKey !== this.cachedDate) {
      // Date.UTC rolls an impossible day over (2023-02-30 becomes 2 March): refuse it instead.
      if (day > daysInMonth(year, month)) return false;
      this.cachedDate = dateKey;
      this.cachedDayStart = Date.UTC(year, month - 1, day) / 1000;
    }
    this.seconds = this.cachedDayStart + hour * 3600 + minute * 60 + second - zoneOffset_s;
    this.fraction = fraction;
    return true;
  }
}

function isBlankCode(code: number): boolean {
  return code === 32 || code === 9;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The decimal value of `count` digits at `start`, or -1 if any is not a digit. */
function digits(text: string, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (!(digit >= 0 && digit <= 9)) return -1;
    value = value * 10 + digit;
  }
  return value;
}
