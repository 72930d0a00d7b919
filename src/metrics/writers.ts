import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";

import type { RequestRowSink } from "./collector.ts";
import { geomeanUpstream, mean, percentileSorted, sortedCopy, std } from "./percentile.ts";
import type { NumericColumn } from "./percentile.ts";
import type { RequestRecord } from "./types.ts";

const REQUESTS_CSV_HEADER =
  "id,arrival_s,prompt_tokens,output_tokens,queue_s,ttft_s,tbt_s,e2e_s,nth_token_overhead_s,preemptions";

/** Flush once this many characters are buffered: few syscalls, bounded memory. */
const FLUSH_THRESHOLD_CHARS = 64 * 1024;

/**
 * Streams `requests.csv`, one row per completed request in completion order. Numbers are written in
 * JavaScript's shortest round-trip form (`String(x)`), so the file is byte-identical across runs and
 * parses back to the exact doubles.
 */
export class RequestsCsvWriter implements RequestRowSink {
  private fd: number | undefined;
  private buffer: string[] = [];
  private bufferedChars = 0;

  constructor(path: string) {
    this.fd = openSync(path, "w");
    this.append(`${REQUESTS_CSV_HEADER}\n`);
  }

  write(record: RequestRecord): void {
    this.append(
      `${record.id},${record.arrival_s},${record.prompt_tokens},${record.output_tokens},${record.queue_s},` +
        `${record.ttft_s},${record.tbt_s},${record.e2e_s},${record.nth_token_overhead_s},${record.preemptions}\n`,
    );
  }

  flush(): void {
    if (this.bufferedChars === 0) return;
    writeSync(this.openFd(), this.buffer.join(""));
    this.buffer = [];
    this.bufferedChars = 0;
  }

  /** Flushes and closes the file; further writes throw. Safe to call twice. */
  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    closeSync(this.fd);
    this.fd = undefined;
  }

  private append(text: string): void {
    this.openFd();
    this.buffer.push(text);
    this.bufferedChars += text.length;
    if (this.bufferedChars >= FLUSH_THRESHOLD_CHARS) this.flush();
  }

  private openFd(): number {
    if (this.fd === undefined) throw new Error("RequestsCsvWriter is closed");
    return this.fd;
  }
}

/**
 * Python's `repr` of a float: the same shortest round-trip digits as JavaScript, but integers keep
 * ".0", exponents are used below 1e-4 and from 1e16 on and have a sign and at least two digits
 * ("1e-05", "1.5e+16"), and non-finite values are nan/inf. CSV cells use `pandasCsvFloat`.
 */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0";
  const sign = value < 0 ? "-" : "";
  // toExponential() with no argument gives the shortest round-trip digits, like String().
  const [mantissa = "", exponentText = "0"] = Math.abs(value).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 16) {
    const exponentDigits = String(Math.abs(exponent)).padStart(2, "0");
    return `${sign}${mantissa}e${exponent < 0 ? "-" : "+"}${exponentDigits}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  const integerPart = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
  const fractionPart = digits.slice(exponent + 1);
  return `${sign}${integerPart}.${fractionPart === "" ? "0" : fractionPart}`;
}

/**
 * A float as pandas `to_csv` writes it (upstream's CSV files): Python's repr, except that a missing
 * value (NaN) is an empty cell (pandas' default `na_rep`), the convention of every splitscale CSV.
 */
export function pandasCsvFloat(value: number): string {
  return Number.isNaN(value) ? "" : pythonFloatRepr(value);
}

const UPSTREAM_DETAILED_HEADER =
  "request_ids,response_times,queue_times,ttft_times,tbt_times,nth_token_overheads,prompt_sizes,token_sizes";

/**
 * Writes upstream splitwise-sim's `detailed/{app}.csv` (one row per completed request, completion
 * order) with Python float formatting, so existing notebooks read it unchanged.
 */
export function writeUpstreamDetailedCsv(path: string, records: Iterable<RequestRecord>): void {
  const lines = [UPSTREAM_DETAILED_HEADER];
  for (const record of records) {
    lines.push(
      [
        record.id,
        record.e2e_s,
        record.queue_s,
        record.ttft_s,
        record.tbt_s,
        record.nth_token_overhead_s,
        record.prompt_tokens,
        record.output_tokens,
      ]
        .map(pandasCsvFloat)
        .join(","),
    );
  }
  writeFileSync(path, `${lines.join("\n")}\n`);
}

/** Per-request arrays of upstream's `detailed/{app}.csv`, the inputs of its `summary.csv`. */
export interface UpstreamColumns {
  readonly request_ids: NumericColumn;
  readonly response_times: NumericColumn;
  readonly queue_times: NumericColumn;
  readonly ttft_times: NumericColumn;
  readonly tbt_times: NumericColumn;
  readonly nth_token_overheads: NumericColumn;
  readonly prompt_sizes: NumericColumn;
  readonly token_sizes: NumericColumn;
}

/** Metric order of upstream's `summary.csv` (the column order of `detailed/{app}.csv`). */
export const UPSTREAM_SUMMARY_METRICS = [
  "request_ids",
  "response_times",
  "queue_times",
  "ttft_times",
  "tbt_times",
  "nth_token_overheads",
  "prompt_sizes",
  "token_sizes",
] as const satisfies readonly (keyof UpstreamColumns)[];

export const UPSTREAM_SUMMARY_STATISTICS = [
  "mean",
  "std",
  "min",
  "max",
  "median",
  "p50",
  "p90",
  "p95",
  "p99",
  "p999",
  "geomean",
] as const;

export interface UpstreamSummaryRow {
  /** `application_id`, then `K_{statistic}` for every metric K. */
  readonly header: readonly string[];
  readonly values: readonly number[];
}

/** Upstream's statistics of one metric, in `UPSTREAM_SUMMARY_STATISTICS` order (scipy gmean: 0 if any 0). */
function upstreamStatistics(values: NumericColumn): number[] {
  const sorted = sortedCopy(values);
  const percentile = (percent: number): number => percentileSorted(sorted, percent / 100);
  const median = percentile(50);
  const n = sorted.length;
  return [
    mean(values),
    std(values),
    n === 0 ? NaN : sorted[0]!,
    n === 0 ? NaN : sorted[n - 1]!,
    median,
    median,
    percentile(90),
    percentile(95),
    percentile(99),
    percentile(99.9),
    geomeanUpstream(values),
  ];
}

/** One application's row of upstream's `summary.csv`, same columns in the same order. */
export function upstreamSummaryRow(columns: UpstreamColumns, applicationId = 0): UpstreamSummaryRow {
  const header = ["application_id"];
  const values = [applicationId];
  for (const metric of UPSTREAM_SUMMARY_METRICS) {
    const statistics = upstreamStatistics(columns[metric]);
    UPSTREAM_SUMMARY_STATISTICS.forEach((statistic, index) => {
      header.push(`${metric}_${statistic}`);
      values.push(statistics[index]!);
    });
  }
  return { header, values };
}

/**
 * Text of upstream's `summary.csv` for one or more applications (application_id as an integer); a
 * statistic without values (no completed request) is an empty cell, as pandas writes NaN.
 */
export function formatUpstreamSummaryCsv(rows: readonly UpstreamSummaryRow[]): string {
  const first = rows[0];
  if (first === undefined) throw new Error("upstream summary needs at least one row");
  const lines = [first.header.join(",")];
  for (const row of rows) {
    const [applicationId = 0, ...statistics] = row.values;
    lines.push([String(applicationId), ...statistics.map(pandasCsvFloat)].join(","));
  }
  return `${lines.join("\n")}\n`;
}
