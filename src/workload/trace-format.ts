import { closeSync, openSync, readSync } from "node:fs";
import { constants as zlibConstants, gunzipSync } from "node:zlib";
import { AzureTraceReader } from "./azure.ts";
import { WorkloadError } from "./errors.ts";
import { describeError, LineReader } from "./line-reader.ts";
import { MooncakeTraceReader } from "./mooncake.ts";
import { SplitwiseTraceReader } from "./splitwise.ts";
import type { TraceReader, TraceReaderOptions } from "./trace-reader.ts";

export type TraceFormat = "azure" | "splitwise" | "mooncake";
export const TRACE_FORMATS: readonly TraceFormat[] = ["azure", "splitwise", "mooncake"];

const SUPPORTED_FORMATS =
  "azure (CSV with columns TIMESTAMP,ContextTokens,GeneratedTokens), " +
  "splitwise (CSV with columns request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size), " +
  'mooncake (JSON Lines with "timestamp", "input_length", "output_length")';

/**
 * Tells a trace's format from its extension (`.jsonl` is Mooncake) or its first non-blank line: a
 * JSON object is Mooncake, a header with TIMESTAMP is Azure, one with request_id or
 * arrival_timestamp is splitwise.
 */
export function detectTraceFormat(path: string): TraceFormat {
  const name = path.toLowerCase().replace(/\.gz$/, "");
  if (name.endsWith(".jsonl")) return "mooncake";
  const { text: first, line } = firstLine(path);
  if (first === undefined) {
    throw new WorkloadError(
      { file: path },
      `the file is empty, so its trace format is unknown; supported formats: ${SUPPORTED_FORMATS}`,
    );
  }
  if (first.trimStart().startsWith("{")) return "mooncake";
  const columns = first.split(",").map((column) =>
    column
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .toLowerCase(),
  );
  if (columns.includes("timestamp")) return "azure";
  if (columns.includes("request_id") || columns.includes("arrival_timestamp")) return "splitwise";
  const shown = first.length > 80 ? `${first.slice(0, 77)}...` : first;
  throw new WorkloadError(
    { file: path, line },
    `cannot tell the trace format from the first line "${shown}"; supported formats: ${SUPPORTED_FORMATS}`,
  );
}

/** The first non-blank line, reading only the start of the file (also of a `.gz` one). */
function firstLine(path: string): { text: string | undefined; line: number } {
  if (!path.toLowerCase().endsWith(".gz")) {
    const reader = new LineReader(path, { chunkSize: 64 * 1024 });
    try {
      for (let text = reader.readLine(); text !== undefined; text = reader.readLine()) {
        if (text.trim() !== "") return { text, line: reader.lineNumber };
      }
      return { text: undefined, line: reader.lineNumber };
    } finally {
      reader.close();
    }
  }
  // Inflate only a prefix: a sync flush returns what the partial input decodes to instead of failing.
  let prefix: Buffer;
  try {
    const fd = openSync(path, "r");
    try {
      const buffer = Buffer.alloc(64 * 1024);
      prefix = buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0));
    } finally {
      closeSync(fd);
    }
    prefix = gunzipSync(prefix, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch (error) {
    throw new WorkloadError({ file: path }, `cannot read file: ${describeError(error)}`);
  }
  const lines = prefix
    .toString("utf8")
    .replace(/^\uFEFF/, "")
    .split("\n");
  for (const [index, text] of lines.entries()) {
    if (text.trim() !== "") return { text: text.replace(/\r$/, ""), line: index + 1 };
  }
  return { text: undefined, line: lines.length };
}

/** Opens a trace reader for `format` ("auto" detects it). */
export function openTrace(
  path: string,
  format: TraceFormat | "auto" = "auto",
  options: TraceReaderOptions = {},
): TraceReader {
  const resolved = format === "auto" ? detectTraceFormat(path) : format;
  switch (resolved) {
    case "azure":
      return new AzureTraceReader(path, options);
    case "splitwise":
      return new SplitwiseTraceReader(path, options);
    case "mooncake":
      return new MooncakeTraceReader(path, options);
  }
}
