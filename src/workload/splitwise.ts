import { CsvRow, locateColumns } from "./csv.ts";
import { WorkloadError } from "./errors.ts";
import { TraceReader, type TraceReaderOptions } from "./trace-reader.ts";
import { UniqueIds } from "./unique-ids.ts";

const REQUIRED = ["arrival_timestamp", "prompt_size", "token_size"] as const;
const OPTIONAL = ["request_id", "request_type", "application_id", "batch_size", "workload_type"] as const;
export const SPLITWISE_COLUMNS = [
  "request_id",
  "request_type",
  "application_id",
  "arrival_timestamp",
  "batch_size",
  "prompt_size",
  "token_size",
] as const;

/**
 * Upstream splitwise-sim traces
 * (`request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size[,workload_type]`).
 * Raw trace time is `arrival_timestamp` in seconds; ids come from `request_id` when present, else
 * the 0-based row index, and must be unique. Numbers may be written as floats (`4096.0`), as pandas
 * writes them.
 */
export class SplitwiseTraceReader extends TraceReader {
  private readonly row: CsvRow;
  private readonly arrivalColumn: number;
  private readonly promptColumn: number;
  private readonly tokenColumn: number;
  private readonly idColumn: number | undefined;
  private readonly lastColumn: number;
  /** Number of columns the header names: a line with more values has a shifted column. */
  private readonly headerColumns: number;
  private rowIndex = 0;
  private readonly ids = new UniqueIds();

  constructor(path: string, options: TraceReaderOptions = {}) {
    super(path, options, { timeField: "arrival_timestamp", fieldKind: "column" });
    this.row = new CsvRow(path);
    try {
      const header = this.readHeader(SPLITWISE_COLUMNS.join(", "));
      const columns = locateColumns(this.row, header, "splitwise", REQUIRED, OPTIONAL);
      this.headerColumns = this.row.count;
      this.arrivalColumn = columns.arrival_timestamp;
      this.promptColumn = columns.prompt_size;
      this.tokenColumn = columns.token_size;
      this.idColumn = columns.request_id;
      this.lastColumn = Math.max(this.arrivalColumn, this.promptColumn, this.tokenColumn, this.idColumn ?? 0);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  protected parseRow(text: string, line: number): void {
    const row = this.row;
    row.split(text, line);
    if (row.count <= this.lastColumn) {
      if (this.idColumn !== undefined) row.require(this.idColumn, "request_id");
      row.require(this.arrivalColumn, "arrival_timestamp");
      row.require(this.promptColumn, "prompt_size");
      row.require(this.tokenColumn, "token_size");
    }
    if (row.count > this.headerColumns) row.requireWidth(this.headerColumns);
    this.rowTime_s = row.finiteNumber(this.arrivalColumn, "arrival_timestamp");
    this.rowPrompt = row.positiveInteger(
      this.promptColumn,
      "prompt_size",
      "a request needs at least one prompt token",
    );
    this.rowOutput = row.positiveInteger(
      this.tokenColumn,
      "token_size",
      "every request generates at least one token (the simulator cannot run a request with 0)",
    );
    if (this.idColumn === undefined) this.rowId = this.rowIndex;
    else {
      this.rowId = row.nonNegativeInteger(this.idColumn, "request_id");
      if (!this.ids.add(this.rowId)) {
        throw new WorkloadError(
          { file: this.file, line, field: "request_id" },
          `request_id ${this.rowId} appears twice; ids must be unique (requests.csv and the upstream outputs are keyed by them)`,
        );
      }
    }
    this.rowIndex++;
  }
}
