/** Where in a workload file something went wrong. */
export interface WorkloadErrorLocation {
  readonly file: string;
  /** 1-based line number, when the problem is on one line. */
  readonly line?: number;
  /** Column (CSV) or key (JSONL) name, when the problem is one value. */
  readonly field?: string;
  /** How `field` is called in the message: CSV has columns, JSONL objects have fields. */
  readonly fieldKind?: "column" | "field";
}

/**
 * A malformed or unreadable workload file (the CLI reports it like a usage error: exit code 2, no
 * stack). The message names the place, e.g.
 * `trace.csv:17: column "ContextTokens": expected a positive integer, got "abc"`.
 */
export class WorkloadError extends Error {
  override readonly name = "WorkloadError";
  readonly file: string;
  readonly line: number | undefined;
  readonly field: string | undefined;
  /** The message without the location prefix. */
  readonly detail: string;

  constructor(location: WorkloadErrorLocation, detail: string) {
    super(formatLocation(location) + detail);
    this.file = location.file;
    this.line = location.line;
    this.field = location.field;
    this.detail = detail;
  }
}

function formatLocation({ file, line, field, fieldKind = "column" }: WorkloadErrorLocation): string {
  const place = line === undefined ? `${file}: ` : `${file}:${line}: `;
  return field === undefined ? place : `${place}${fieldKind} "${field}": `;
}
