/**
 * A tolerant parser for the Prometheus text exposition format (0.0.4), with the OpenMetrics details
 * engines emit in practice (`# EOF`, counters typed without their `_total` suffix, `_created`).
 *
 * Tolerant means: a bad line is recorded in `errors` with its line number and skipped; the rest of
 * the page is still used. Nothing here throws on input, whatever the page contains. A page that yields
 * no sample at all is for the caller to treat as missing (see `collector.ts`).
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  /** The sample's own name (`vllm:time_to_first_token_seconds_bucket`, not the family's). */
  readonly name: string;
  readonly labels: Labels;
  readonly value: number;
  readonly timestamp_ms?: number;
}

export interface MetricFamily {
  readonly name: string;
  type: MetricType;
  help?: string;
  readonly samples: Sample[];
}

export interface ParseError {
  /** 1-based line number in the page. */
  readonly line: number;
  readonly message: string;
}

export interface ParsedPage {
  readonly families: ReadonlyMap<string, MetricFamily>;
  /** Every sample by its own name (what lookups by exposition name use). */
  readonly samples: ReadonlyMap<string, readonly Sample[]>;
  readonly errors: readonly ParseError[];
  readonly sampleCount: number;
}

/** Errors kept per page: enough to explain a broken page without letting garbage grow memory. */
export const MAX_PARSE_ERRORS = 20;

const NAME_START = /[A-Za-z_:]/;
const NAME_CHAR = /[A-Za-z0-9_:]/;
const LABEL_START = /[A-Za-z_]/;
const LABEL_CHAR = /[A-Za-z0-9_]/;

const TYPES: Readonly<Record<string, MetricType>> = {
  counter: "counter",
  gauge: "gauge",
  histogram: "histogram",
  gaugehistogram: "histogram",
  summary: "summary",
  untyped: "untyped",
  unknown: "untyped",
  info: "gauge",
  stateset: "gauge",
};

const SUFFIXES: Readonly<Record<MetricType, readonly string[]>> = {
  histogram: ["_bucket", "_sum", "_count", "_created", "_gcount", "_gsum"],
  summary: ["_sum", "_count", "_created"],
  counter: ["_total", "_created"],
  gauge: [],
  untyped: [],
};

/** Parses a float the way Prometheus does (`+Inf`, `-Inf`, `NaN`, Go float syntax); undefined if invalid. */
export function parseFloatStrict(text: string): number | undefined {
  switch (text) {
    case "+Inf":
    case "Inf":
    case "+inf":
    case "inf":
      return Infinity;
    case "-Inf":
    case "-inf":
      return -Infinity;
    case "NaN":
    case "nan":
      return NaN;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) && !/^[+-]?0[xX][0-9a-fA-F]+$/.test(text))
    return undefined;
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}

class LineCursor {
  index = 0;
  constructor(readonly text: string) {}
  get done(): boolean {
    return this.index >= this.text.length;
  }
  peek(): string {
    return this.text[this.index] ?? "";
  }
  skipSpaces(): void {
    while (this.peek() === " " || this.peek() === "\t") this.index++;
  }
  name(start: RegExp, rest: RegExp): string | undefined {
    const from = this.index;
    if (!start.test(this.peek())) return undefined;
    this.index++;
    while (!this.done && rest.test(this.peek())) this.index++;
    return this.text.slice(from, this.index);
  }
  token(): string {
    const from = this.index;
    while (!this.done && this.peek() !== " " && this.peek() !== "\t") this.index++;
    return this.text.slice(from, this.index);
  }
}

/** Reads `{a="b",c="d"}` at the cursor (which is on `{`); a message on failure. */
function parseLabels(cursor: LineCursor): Record<string, string> | string {
  const labels: Record<string, string> = {};
  cursor.index++; // {
  for (;;) {
    cursor.skipSpaces();
    if (cursor.peek() === "}") {
      cursor.index++;
      return labels;
    }
    const name = cursor.name(LABEL_START, LABEL_CHAR);
    if (name === undefined) return `bad label name at column ${cursor.index + 1}`;
    cursor.skipSpaces();
    if (cursor.peek() !== "=") return `expected "=" after label ${name}`;
    cursor.index++;
    cursor.skipSpaces();
    if (cursor.peek() !== '"') return `expected a quoted value for label ${name}`;
    cursor.index++;
    let value = "";
    for (;;) {
      if (cursor.done) return `unterminated value for label ${name}`;
      const char = cursor.peek();
      cursor.index++;
      if (char === '"') break;
      if (char === "\\") {
        const escaped = cursor.peek();
        cursor.index++;
        if (escaped === "n") value += "\n";
        else if (escaped === "\\" || escaped === '"') value += escaped;
        else value += `\\${escaped}`;
        continue;
      }
      value += char;
    }
    if (Object.hasOwn(labels, name)) return `duplicate label ${name}`;
    labels[name] = value;
    cursor.skipSpaces();
    if (cursor.peek() === ",") {
      cursor.index++;
      continue;
    }
    if (cursor.peek() === "}") {
      cursor.index++;
      return labels;
    }
    return `expected "," or "}" after label ${name}`;
  }
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(n|\\)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
}

/** The family a sample belongs to: a typed family whose suffix matches, else its own name. */
function familyNameOf(sampleName: string, typed: ReadonlyMap<string, MetricFamily>): string {
  if (typed.has(sampleName)) return sampleName;
  for (const [type, suffixes] of Object.entries(SUFFIXES) as [MetricType, readonly string[]][]) {
    for (const suffix of suffixes) {
      if (!sampleName.endsWith(suffix)) continue;
      const base = sampleName.slice(0, -suffix.length);
      if (typed.get(base)?.type === type) return base;
    }
  }
  return sampleName;
}

/** Parses a whole page; never throws. */
export function parsePrometheusText(text: string): ParsedPage {
  const families = new Map<string, MetricFamily>();
  const samples = new Map<string, Sample[]>();
  const errors: ParseError[] = [];
  let errorCount = 0;
  let sampleCount = 0;
  const fail = (line: number, message: string): void => {
    errorCount++;
    if (errors.length < MAX_PARSE_ERRORS) errors.push({ line, message });
  };
  const familyFor = (name: string): MetricFamily => {
    let family = families.get(name);
    if (family === undefined) {
      family = { name, type: "untyped", samples: [] };
      families.set(name, family);
    }
    return family;
  };

  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    let line = lines[index]!;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const match = /^#\s*(HELP|TYPE|EOF)\b\s*(.*)$/.exec(line);
      if (match === null) continue; // a plain comment
      const [, keyword, rest = ""] = match;
      if (keyword === "EOF") break;
      const space = rest.search(/\s/);
      const name = space < 0 ? rest : rest.slice(0, space);
      const value = space < 0 ? "" : rest.slice(space + 1).trim();
      if (!/^[A-Za-z_:][A-Za-z0-9_:]*$/.test(name)) {
        fail(lineNumber, `# ${keyword} with a bad metric name "${name}"`);
        continue;
      }
      if (keyword === "HELP") {
        familyFor(name).help = unescapeHelp(value);
      } else {
        const type = TYPES[value.toLowerCase()];
        if (type === undefined) {
          fail(lineNumber, `# TYPE ${name}: unknown type "${value}"`);
          continue;
        }
        const family = familyFor(name);
        if (family.samples.length > 0 && family.type !== type) {
          fail(lineNumber, `# TYPE ${name} after its samples`);
          continue;
        }
        family.type = type;
      }
      continue;
    }
    const cursor = new LineCursor(line);
    cursor.skipSpaces();
    const name = cursor.name(NAME_START, NAME_CHAR);
    if (name === undefined) {
      fail(lineNumber, `expected a metric name, got "${truncate(line)}"`);
      continue;
    }
    cursor.skipSpaces();
    let labels: Record<string, string> = {};
    if (cursor.peek() === "{") {
      const parsed = parseLabels(cursor);
      if (typeof parsed === "string") {
        fail(lineNumber, `${name}: ${parsed}`);
        continue;
      }
      labels = parsed;
    }
    cursor.skipSpaces();
    const valueText = cursor.token();
    const value = parseFloatStrict(valueText);
    if (value === undefined) {
      fail(
        lineNumber,
        valueText === "" ? `${name}: missing value` : `${name}: bad value "${truncate(valueText)}"`,
      );
      continue;
    }
    cursor.skipSpaces();
    let timestamp_ms: number | undefined;
    if (!cursor.done) {
      const stampText = cursor.token();
      const stamp = parseFloatStrict(stampText);
      cursor.skipSpaces();
      if (stamp === undefined || !Number.isFinite(stamp) || !cursor.done) {
        fail(lineNumber, `${name}: unexpected "${truncate(line.slice(cursor.index - stampText.length))}"`);
        continue;
      }
      timestamp_ms = stamp;
    }
    const sample: Sample =
      timestamp_ms === undefined ? { name, labels, value } : { name, labels, value, timestamp_ms };
    familyFor(familyNameOf(name, families)).samples.push(sample);
    let list = samples.get(name);
    if (list === undefined) {
      list = [];
      samples.set(name, list);
    }
    list.push(sample);
    sampleCount++;
  }
  if (errorCount > errors.length)
    errors.push({ line: 0, message: `${errorCount - errors.length} more bad line(s) not shown` });
  return { families, samples, errors, sampleCount };
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A stable key for a label set (sorted), optionally without some labels (`le`, `quantile`). */
export function labelKey(labels: Labels, without: readonly string[] = []): string {
  return Object.keys(labels)
    .filter((key) => !without.includes(key))
    .sort()
    .map((key) => `${key}=${JSON.stringify(labels[key])}`)
    .join(",");
}
