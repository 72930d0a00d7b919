import type { LatencySummary, RunSummary, ScalingSummary } from "../metrics/summary.ts";

export type TableCell = string | number;
export type Alignment = "left" | "right";

export interface TableOptions {
  /** Per-column alignment; by default numbers are right-aligned and strings left-aligned. */
  readonly align?: readonly Alignment[];
  /** Box-drawing lines (default) or plain ASCII for logs and terminals without Unicode. */
  readonly style?: "box" | "ascii";
  /** Formats numeric cells; defaults to `formatNumber`. */
  readonly formatNumber?: (value: number) => string;
  /** Printed above the table. */
  readonly title?: string;
  /**
   * Widest the table may be, in characters (e.g. the terminal's width). Over it, the widest
   * left-aligned text columns wrap at spaces onto extra lines, down to 16 characters each; numbers
   * never wrap, so a table of numbers that cannot fit stays one line per row.
   */
  readonly maxWidth?: number;
}

interface BorderCharacters {
  readonly horizontal: string;
  readonly vertical: string;
  readonly top: readonly [string, string, string];
  readonly middle: readonly [string, string, string];
  readonly bottom: readonly [string, string, string];
}

const BOX: BorderCharacters = {
  horizontal: "─",
  vertical: "│",
  top: ["┌", "┬", "┐"],
  middle: ["├", "┼", "┤"],
  bottom: ["└", "┴", "┘"],
};

const ASCII: BorderCharacters = {
  horizontal: "-",
  vertical: "|",
  top: ["+", "+", "+"],
  middle: ["+", "+", "+"],
  bottom: ["+", "+", "+"],
};

/** Default number rendering: integers as-is, others with up to 4 significant decimals, NaN as "-". */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? "-" : value > 0 ? "inf" : "-inf";
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(3);
  return value.toPrecision(4);
}

/** Fixed-width text table: one header row, a rule, then the rows; every line has the same width. */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly TableCell[])[],
  options: TableOptions = {},
): string {
  const border = options.style === "ascii" ? ASCII : BOX;
  const renderNumber = options.formatNumber ?? formatNumber;
  const columnCount = Math.max(headers.length, ...rows.map((row) => row.length));
  const text = rows.map((row) =>
    Array.from({ length: columnCount }, (_, column) => {
      const cell = row[column];
      return cell === undefined ? "" : typeof cell === "number" ? renderNumber(cell) : cell;
    }),
  );
  const alignment = Array.from({ length: columnCount }, (_, column): Alignment => {
    const explicit = options.align?.[column];
    if (explicit !== undefined) return explicit;
    return rows.some((row) => typeof row[column] === "number") ? "right" : "left";
  });
  const widths = Array.from({ length: columnCount }, (_, column) =>
    Math.max((headers[column] ?? "").length, ...text.map((row) => row[column]!.length)),
  );
  if (options.maxWidth !== undefined) narrowColumns(widths, alignment, headers, options.maxWidth);

  const pad = (cell: string, column: number): string =>
    alignment[column] === "right" ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!);
  const line = (cells: readonly string[]): string =>
    `${border.vertical} ${cells.map(pad).join(` ${border.vertical} `)} ${border.vertical}`;
  const rule = ([left, join, right]: readonly [string, string, string]): string =>
    `${left}${widths.map((width) => border.horizontal.repeat(width + 2)).join(join)}${right}`;

  // A row whose wrapped cells take several lines prints them side by side, padded with blanks.
  const rowLines = (cells: readonly string[]): string[] => {
    const wrapped = cells.map((cell, column) => wrapText(cell, widths[column]!));
    const height = Math.max(1, ...wrapped.map((parts) => parts.length));
    return Array.from({ length: height }, (_, index) => line(wrapped.map((parts) => parts[index] ?? "")));
  };
  const lines = [
    rule(border.top),
    line(Array.from({ length: columnCount }, (_, column) => headers[column] ?? "")),
    rule(border.middle),
    ...text.flatMap(rowLines),
    rule(border.bottom),
  ];
  if (options.title !== undefined) lines.unshift(options.title);
  return lines.join("\n");
}

/** The terminal's width when stdout is one (tables then wrap to it), else undefined: piped output keeps one line per row. */
export function terminalWidth(stream: NodeJS.WriteStream = process.stdout): number | undefined {
  return stream.isTTY && stream.columns > 0 ? stream.columns : undefined;
}

/** Columns narrower than this are never wrapped (a description squeezed further reads worse than a wide table). */
const MIN_WRAPPED_WIDTH = 16;

/** Shrinks the widest left-aligned columns until the table fits `maxWidth` or none can shrink more. */
function narrowColumns(
  widths: number[],
  alignment: readonly Alignment[],
  headers: readonly string[],
  maxWidth: number,
): void {
  // Each column takes its width plus 3 characters of border and padding; the table one more.
  const total = (): number => widths.reduce((sum, width) => sum + width + 3, 1);
  while (total() > maxWidth) {
    let widest = -1;
    for (let column = 0; column < widths.length; column++) {
      const floor = Math.max(MIN_WRAPPED_WIDTH, (headers[column] ?? "").length);
      if (alignment[column] !== "left" || widths[column]! <= floor) continue;
      if (widest < 0 || widths[column]! > widths[widest]!) widest = column;
    }
    if (widest < 0) return;
    const floor = Math.max(MIN_WRAPPED_WIDTH, (headers[widest] ?? "").length);
    widths[widest] = Math.max(floor, widths[widest]! - (total() - maxWidth));
  }
}

/** Splits `text` into lines of at most `width` characters at spaces (a longer word is cut). */
export function wrapText(text: string, width: number): string[] {
  if (text.length <= width) return [text];
  const lines: string[] = [];
  let current = "";
  for (const word of text.split(" ")) {
    let rest = word;
    while (rest.length > width) {
      if (current !== "") lines.push(current);
      lines.push(rest.slice(0, width));
      rest = rest.slice(width);
      current = "";
    }
    if (current === "") current = rest;
    else if (current.length + 1 + rest.length <= width) current += ` ${rest}`;
    else {
      lines.push(current);
      current = rest;
    }
  }
  if (current !== "" || lines.length === 0) lines.push(current);
  return lines;
}

function milliseconds(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "-";
  return (seconds * 1000).toFixed(seconds * 1000 >= 100 ? 1 : 2);
}

function orDash(value: number | null, render: (value: number) => string): string {
  return value === null || !Number.isFinite(value) ? "-" : render(value);
}

function latencyRow(name: string, latency: LatencySummary): string[] {
  return [
    name,
    milliseconds(latency.mean),
    milliseconds(latency.p50),
    milliseconds(latency.p90),
    milliseconds(latency.p99),
    milliseconds(latency.max),
  ];
}

function slowdownRow(name: string, values: { p50: number; p90: number; p99: number }): string[] {
  const render = (value: number): string => value.toFixed(2);
  return [name, orDash(values.p50, render), orDash(values.p90, render), orDash(values.p99, render)];
}

/**
 * What the autoscaler did: its policy, how many replicas it ran, and where the GPU-hours went (active
 * replicas, starting and draining ones, servers' GPUs no instance used), each with its share.
 */
function scalingRows(scaling: ScalingSummary, gpuHours: number | null): [string, string][] {
  const byState = scaling.gpu_seconds_by_state;
  const hours = (seconds: number): string => {
    const share =
      gpuHours !== null && gpuHours > 0 ? ` (${((seconds / 3600 / gpuHours) * 100).toFixed(1)} %)` : "";
    return `${(seconds / 3600).toFixed(3)}${share}`;
  };
  return [
    ["policy", scaling.policy ?? "-"],
    ["replicas peak / final", `${scaling.max_replicas} / ${scaling.final_replicas}`],
    ["target changes", String(scaling.decisions)],
    ["scaling actions", String(scaling.events)],
    ["GPU-hours active", hours(byState.active)],
    ["GPU-hours starting", hours(byState.starting)],
    ["GPU-hours draining", hours(byState.draining)],
    ...(byState.unassigned > 0
      ? [["GPU-hours unassigned", hours(byState.unassigned)] as [string, string]]
      : []),
  ];
}

/** Human-readable report of a run summary (latencies in ms) for the terminal. */
export function formatSummaryTable(summary: RunSummary, options: Pick<TableOptions, "style"> = {}): string {
  const { requests, slo } = summary;
  const overview: [string, string][] = [
    ["requests arrived", String(requests.arrived)],
    ["requests completed", String(requests.completed)],
    ["requests unfinished", String(requests.unfinished)],
    // Shown only when it happens: requests larger than any instance's KV cache (SLO misses).
    ...(requests.rejected > 0
      ? [["requests refused (KV cache too small)", String(requests.rejected)] as [string, string]]
      : []),
    ["requests measured", `${requests.measured} (warm-up ${requests.warmup_s} s)`],
    ["SLO attainment", orDash(slo.attainment, (value) => `${(value * 100).toFixed(2)} %`)],
    ["meets Splitwise SLO", slo.meets_splitwise_slo ? "yes" : "no"],
    ["throughput", orDash(summary.throughput.requests_per_s, (value) => `${value.toFixed(3)} req/s`)],
    ["output tokens", orDash(summary.throughput.output_tokens_per_s, (value) => `${value.toFixed(1)} tok/s`)],
    ["preemptions", String(summary.preemptions)],
    ["simulated time", orDash(summary.sim_end_s, (value) => `${value.toFixed(1)} s`)],
    ["GPU-hours", orDash(summary.gpu_hours, (value) => value.toFixed(3))],
    ["cost", orDash(summary.cost_usd, (value) => `$${value.toFixed(2)}`)],
    ["energy", orDash(summary.energy_kwh, (value) => `${value.toFixed(2)} kWh`)],
    ["utilization", orDash(summary.instance_utilization, (value) => `${(value * 100).toFixed(1)} %`)],
    ["events", orDash(summary.events, String)],
    ["wall time", orDash(summary.wall_s, (value) => `${value.toFixed(2)} s`)],
  ];
  const style = options.style ?? "box";
  const right: Alignment[] = ["left", "right", "right", "right", "right", "right"];
  const scaling = summary.scaling;
  return [
    formatTable(["run", "value"], overview, { style, align: ["left", "right"] }),
    ...(scaling === null
      ? []
      : [
          formatTable(["autoscaling", "value"], scalingRows(scaling, summary.gpu_hours), {
            style,
            align: ["left", "right"],
          }),
        ]),
    formatTable(
      ["latency (ms)", "mean", "p50", "p90", "p99", "max"],
      [
        latencyRow("TTFT", summary.ttft_s),
        latencyRow("TBT", summary.tbt_s),
        latencyRow("E2E", summary.e2e_s),
        latencyRow("queue", summary.queue_s),
        latencyRow("nth-token overhead", summary.nth_token_overhead_s),
      ],
      { style, align: right },
    ),
    formatTable(
      ["slowdown", "p50", "p90", "p99"],
      [
        slowdownRow("TTFT", summary.slowdown.ttft),
        slowdownRow("TBT", summary.slowdown.tbt),
        slowdownRow("E2E", summary.slowdown.e2e),
      ],
      { style, align: right },
    ),
  ].join("\n");
}
