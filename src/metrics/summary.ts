import type { RequestMetricsCollector } from "./collector.ts";
import { max, mean, percentiles } from "./percentile.ts";
import type { NumericColumn } from "./percentile.ts";
import { evaluateSlo, SPLITWISE_SLO } from "./slo.ts";
import type { SloResult, SloSpec, SlowdownChecks } from "./slo.ts";
import type { Distribution } from "./types.ts";

/** Values callers may attach in `extra`; they appear last in JSON and CSV. */
export type ExtraValue = number | string | boolean | null;

export interface RunSummaryInput {
  readonly collector: RequestMetricsCollector;
  /** Defaults to the Splitwise paper's SLO. */
  readonly slo?: SloSpec;
  /** Simulated end time; defaults to the last completion. Sets the throughput window. */
  readonly sim_end_s?: number;
  readonly gpu_hours?: number;
  readonly cost_usd?: number;
  readonly energy_kwh?: number;
  /** Mean busy fraction over instances. */
  readonly instance_utilization?: number;
  /** Requests refused because no instance could ever hold them. */
  readonly rejected?: number;
  /** Fleet changes over the run (a fixed fleet reports no events). */
  readonly scaling?: ScalingSummary;
  /** Simulator events processed. */
  readonly events?: number;
  /** Wall-clock seconds the run took. */
  readonly wall_s?: number;
  readonly seed?: number;
  readonly config_hash?: string;
  readonly extra?: Readonly<Record<string, ExtraValue>>;
}

/** What autoscaling did; replica counts are summed over pools (starting + active instances). */
export interface ScalingSummary {
  readonly policy: string | null;
  /** Scale-ups, drains, cancellations and re-activations started. */
  readonly events: number;
  /** Decisions that changed a pool's target. */
  readonly decisions: number;
  readonly max_replicas: number;
  readonly final_replicas: number;
  /**
   * Billed GPU-seconds by what they did: the GPUs of starting (paid, not serving), active and
   * draining instances, and `unassigned` GPUs of provisioned servers that no instance ran on. The
   * four add up to `gpu_hours` × 3600.
   */
  readonly gpu_seconds_by_state: {
    readonly starting: number;
    readonly active: number;
    readonly draining: number;
    readonly unassigned: number;
  };
}

export interface LatencySummary extends Distribution {
  readonly max: number;
}

export interface SlowdownSummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/**
 * Plain JSON-serialisable run summary. Every key is always present, in this order (absent inputs are
 * null), so two runs serialise to byte-identical text and CSV rows share one header.
 * Latency, slowdown, SLO and throughput figures cover the measured window (arrivals at or after the
 * collector's `warmup_s`); request counts and preemptions cover the whole run.
 */
export interface RunSummary {
  readonly requests: {
    readonly arrived: number;
    readonly completed: number;
    /** arrived − completed: still queued or running when the run ended. */
    readonly unfinished: number;
    /** Refused because no instance could ever hold their KV cache (counted in unfinished too). */
    readonly rejected: number;
    /** Completed requests in the latency statistics (arrived at or after `warmup_s`). */
    readonly measured: number;
    readonly warmup_s: number;
  };
  readonly ttft_s: LatencySummary;
  readonly tbt_s: LatencySummary;
  readonly e2e_s: LatencySummary;
  readonly queue_s: LatencySummary;
  readonly nth_token_overhead_s: LatencySummary;
  readonly slowdown: {
    readonly ttft: SlowdownSummary;
    readonly tbt: SlowdownSummary;
    readonly e2e: SlowdownSummary;
  };
  readonly slo: SloResult;
  readonly throughput: {
    /** Measured completions / (sim_end_s − warmup_s). */
    readonly requests_per_s: number;
    /** Output tokens of measured completions / (sim_end_s − warmup_s). */
    readonly output_tokens_per_s: number;
  };
  /** Total decode preemptions over all completed requests. */
  readonly preemptions: number;
  readonly sim_end_s: number | null;
  readonly gpu_hours: number | null;
  readonly cost_usd: number | null;
  readonly energy_kwh: number | null;
  readonly instance_utilization: number | null;
  readonly scaling: ScalingSummary | null;
  readonly events: number | null;
  readonly wall_s: number | null;
  readonly seed: number | null;
  readonly config_hash: string | null;
  readonly extra: Readonly<Record<string, ExtraValue>>;
}

/** Selection instead of a full sort: a 10-million-row summary needs only three quantiles per metric. */
function latencySummary(values: NumericColumn): LatencySummary {
  const [p50 = NaN, p90 = NaN, p99 = NaN] = percentiles(values, [0.5, 0.9, 0.99]);
  return { mean: mean(values), p50, p90, p99, max: max(values) };
}

function slowdownSummary(checks: SlowdownChecks): SlowdownSummary {
  return { p50: checks.p50.value, p90: checks.p90.value, p99: checks.p99.value };
}

export function buildRunSummary(input: RunSummaryInput): RunSummary {
  const { collector } = input;
  const counts = collector.counts();
  const columns = collector.columns();
  const slo = evaluateSlo(columns, counts.measured_arrived, input.slo ?? SPLITWISE_SLO);

  const lastCompletion = collector.last_completion_s;
  const simEnd = input.sim_end_s ?? (Number.isFinite(lastCompletion) ? lastCompletion : null);
  const window = simEnd === null ? NaN : simEnd - collector.warmup_s;
  const perSecond = (amount: number): number => (window > 0 ? amount / window : NaN);

  return {
    requests: {
      arrived: counts.arrived,
      completed: counts.completed,
      unfinished: Math.max(0, counts.arrived - counts.completed),
      rejected: input.rejected ?? 0,
      measured: counts.measured_completed,
      warmup_s: collector.warmup_s,
    },
    ttft_s: latencySummary(columns.ttft_s),
    tbt_s: latencySummary(columns.tbt_s),
    e2e_s: latencySummary(columns.e2e_s),
    queue_s: latencySummary(columns.queue_s),
    nth_token_overhead_s: latencySummary(columns.nth_token_overhead_s),
    slowdown: {
      ttft: slowdownSummary(slo.per_percentile.ttft_slowdown),
      tbt: slowdownSummary(slo.per_percentile.tbt_slowdown),
      e2e: slowdownSummary(slo.per_percentile.e2e_slowdown),
    },
    slo,
    throughput: {
      requests_per_s: perSecond(counts.measured_completed),
      output_tokens_per_s: perSecond(collector.measuredOutputTokens),
    },
    preemptions: collector.preemptions,
    sim_end_s: simEnd,
    gpu_hours: input.gpu_hours ?? null,
    cost_usd: input.cost_usd ?? null,
    energy_kwh: input.energy_kwh ?? null,
    instance_utilization: input.instance_utilization ?? null,
    scaling: input.scaling ?? null,
    events: input.events ?? null,
    wall_s: input.wall_s ?? null,
    seed: input.seed ?? null,
    config_hash: input.config_hash ?? null,
    extra: { ...input.extra },
  };
}

/** Non-finite numbers have no JSON form; null is what readers expect for "not available". */
function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? null : value;
}

/** Deterministic JSON text: 2-space indent, NaN/Infinity as null, trailing newline. */
export function summaryToJson(summary: RunSummary): string {
  return `${JSON.stringify(summary, finiteOrNull, 2)}\n`;
}

export interface CsvRow {
  /** Comma-separated column names. */
  readonly header: string;
  /** Comma-separated values, same count as the header. */
  readonly row: string;
}

/** Column names: lower-case, only letters, digits and underscores (pandas-friendly, no dots). */
function columnName(path: readonly string[]): string {
  return path
    .join("_")
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_");
}

/** Quotes a CSV field only when it would otherwise break the row (RFC 4180 style). */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One CSV cell: missing and non-finite numbers empty, booleans true/false, text quoted when needed. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return csvField(value);
  throw new TypeError(`cannot write ${typeof value} to a summary CSV`);
}

function flatten(value: unknown, path: string[], out: [string, string][]): void {
  if (value !== null && typeof value === "object") {
    for (const [key, child] of Object.entries(value)) flatten(child, [...path, key], out);
    return;
  }
  out.push([columnName(path), csvCell(value)]);
}

/** The shape of a missing `scaling` (null): its columns, all empty. */
const NO_SCALING: { readonly [K in keyof ScalingSummary]: null | Record<string, null> } = {
  policy: null,
  events: null,
  decisions: null,
  max_replicas: null,
  final_replicas: null,
  gpu_seconds_by_state: { starting: null, active: null, draining: null, unassigned: null },
};

/**
 * One-row CSV of the summary: nested keys joined with "_" (`ttft_s_p99`, `requests_arrived`,
 * `slo_attainment`, `extra_<key>`), numbers unquoted in shortest round-trip form, missing values
 * empty, booleans `true`/`false`. `pandas.read_csv` loads it directly. A missing `scaling` keeps its
 * `scaling_*` columns (empty), so rows of runs with and without it share one header.
 */
export function summaryToCsvRow(summary: RunSummary): CsvRow {
  const cells: [string, string][] = [];
  flatten(summary.scaling === null ? { ...summary, scaling: NO_SCALING } : summary, [], cells);
  const seen = new Set<string>();
  for (const [name] of cells) {
    if (seen.has(name)) throw new Error(`summary CSV column "${name}" appears twice (check the extra keys)`);
    seen.add(name);
  }
  return {
    header: cells.map(([name]) => name).join(","),
    row: cells.map(([, value]) => value).join(","),
  };
}
