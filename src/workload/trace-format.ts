import { AzureTraceReader } from "./azure.ts";
import { firstLineHint, formatOfFirstLine } from "./first-line.ts";
import { WorkloadError } from "./errors.ts";
import { LineReader } from "./line-reader.ts";
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
 * JSON object is Mooncake; a header with all of a format's columns is that format; else one with
 * TIMESTAMP is Azure, one with request_id or arrival_timestamp is splitwise.
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
  const format = formatOfFirstLine(first);
  if (format !== undefined) return format;
  const shown = first.length > 80 ? `${first.slice(0, 77)}...` : first;
  throw new WorkloadError(
    { file: path, line },
    `cannot tell the trace format from the first line "${shown}"; supported formats: ${SUPPORTED_FORMATS}` +
      firstLineHint(first, undefined),
  );
}

/** The first non-blank line, reading only the start of the file (also of a `.gz` one, which streams). */
function firstLine(path: string): { text: string | undefined; line: number } {
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
