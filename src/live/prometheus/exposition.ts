/**
 * A minimal writer of the Prometheus text format for the emulated engine's `/metrics` page and the
 * gateway's per-request series (the rest of the gateway's page comes from prom-client). Names keep
 * vLLM's colons (`vllm:num_requests_running`).
 */
import type { Labels } from "./parser.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`;
}

/** Upper bounds (the last +Inf) with cumulative counts, their total and sum. */
export interface HistogramSnapshot {
  readonly le: readonly number[];
  readonly cumulative: readonly number[];
  readonly count: number;
  readonly sum: number;
}

export class ExpositionWriter {
  private readonly lines: string[] = [];

  private header(name: string, type: string, help: string): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    this.lines.push(`# TYPE ${name} ${type}`);
  }

  gauge(name: string, help: string, series: readonly { labels: Labels; value: number }[]): this {
    this.header(name, "gauge", help);
    for (const { labels, value } of series)
      this.lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** `name` should end in `_total`, as vLLM's counters do. */
  counter(name: string, help: string, series: readonly { labels: Labels; value: number }[]): this {
    this.header(name, "counter", help);
    for (const { labels, value } of series)
      this.lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** A histogram from upper bounds (last +Inf) and cumulative counts. */
  histogram(name: string, help: string, labels: Labels, histogram: HistogramSnapshot): this {
    return this.histograms(name, help, [{ labels, histogram }]);
  }

  /** A histogram family with one series per label set (none: the family's header only). */
  histograms(
    name: string,
    help: string,
    series: readonly { labels: Labels; histogram: HistogramSnapshot }[],
  ): this {
    this.header(name, "histogram", help);
    for (const { labels, histogram } of series) {
      histogram.le.forEach((bound, i) => {
        const le = bound === Infinity ? "+Inf" : String(bound);
        this.lines.push(
          `${name}_bucket${formatLabels({ ...labels, le })} ${formatValue(histogram.cumulative[i]!)}`,
        );
      });
      this.lines.push(`${name}_sum${formatLabels(labels)} ${formatValue(histogram.sum)}`);
      this.lines.push(`${name}_count${formatLabels(labels)} ${formatValue(histogram.count)}`);
    }
    return this;
  }

  toString(): string {
    return `${this.lines.join("\n")}\n`;
  }
}
