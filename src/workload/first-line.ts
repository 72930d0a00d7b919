import type { TraceFormat } from "./trace-format.ts";

/**
 * What a trace's first line says about its format: used to detect the format, and to explain in an
 * error why a file does not read as the format it was given.
 */

export const FORMAT_TITLES: Record<TraceFormat, string> = {
  azure: "an Azure LLM inference",
  splitwise: "a splitwise",
  mooncake: "a Mooncake JSON Lines",
};

/**
 * Which format a trace's first line looks like: a JSON object is Mooncake; a header with all of a
 * CSV format's columns is that format; else one with TIMESTAMP is Azure, one with request_id or
 * arrival_timestamp splitwise. Undefined when none fits.
 */
export function formatOfFirstLine(text: string): TraceFormat | undefined {
  if (text.trimStart().startsWith("{")) return "mooncake";
  const columns = text.split(",").map((column) =>
    column
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .trim()
      .toLowerCase(),
  );
  const has = (name: string): boolean => columns.includes(name);
  if (has("timestamp") && has("contexttokens") && has("generatedtokens")) return "azure";
  if (has("arrival_timestamp") && has("prompt_size") && has("token_size")) return "splitwise";
  if (has("timestamp")) return "azure";
  if (has("request_id") || has("arrival_timestamp")) return "splitwise";
  return undefined;
}

/** A first line that starts with a number or a date is a row, not a header. */
const LOOKS_LIKE_DATA = /^\s*"?(?:[+-]?[\d.]|\d{4}-\d\d-\d\d)/;

/**
 * Why a trace's first line is not what `format` (undefined: any format) needs, when it can be
 * told: the file is of another format, is one JSON document over many lines, starts with a comment,
 * uses another separator than commas, or has no header. "" when none fits; else the hint, starting with "; ".
 */
export function firstLineHint(text: string, format: TraceFormat | undefined): string {
  const looksLike = formatOfFirstLine(text);
  if (looksLike !== undefined && looksLike !== format) {
    return `; the file looks like ${FORMAT_TITLES[looksLike]} trace: set the trace format to ${looksLike} or auto`;
  }
  const trimmed = text.trim();
  if (trimmed === "[" || trimmed === "{") {
    return "; a Mooncake trace is JSON Lines: one whole JSON object on each line, not one JSON document over many";
  }
  if (trimmed.startsWith("#")) return "; comment lines are not supported in a trace: delete the line";
  if (format === "mooncake") return "";
  if (!text.includes(",")) {
    if (text.includes(";")) return "; values must be separated by commas, and this line uses semicolons";
    if (text.includes("\t")) return "; values must be separated by commas, and this line uses tabs";
  }
  if (LOOKS_LIKE_DATA.test(text)) {
    return "; the first line looks like data, not a header: a CSV trace needs a header line first";
  }
  return "";
}
