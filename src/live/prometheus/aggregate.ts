/**
 * What a controller does with parsed pages: sum a metric over its label sets, read a histogram,
 * merge histograms across workers by bucket, take quantiles and deltas, and turn counters into rates
 * with reset handling. Staleness lives in the collector (a worker not scraped recently is missing,
 * never zero).
 */
import type { HistogramSnapshot } from "../../policy/types.ts";
import { labelKey, type Labels, type ParsedPage, type Sample } from "./parser.ts";

/** Selects the samples whose labels include every `match` pair. */
function matches(labels: Labels, match: Labels | undefined): boolean {
  if (match === undefined) return true;
  for (const [key, value] of Object.entries(match)) if (labels[key] !== value) return false;
  return true;
}

/** Sum of every finite sample named `name` (over all label sets); undefined when there is none. */
export function sumOf(page: ParsedPage, name: string, match?: Labels): number | undefined {
  let total: number | undefined;
  for (const sample of page.samples.get(name) ?? []) {
    if (!matches(sample.labels, match) || !Number.isFinite(sample.value)) continue;
    total = (total ?? 0) + sample.value;
  }
  return total;
}

/** How several label sets of one gauge combine: counts add up, fractions are averaged or maxed. */
export type Combine = "sum" | "mean" | "max";

export function combineOf(page: ParsedPage, name: string, how: Combine, match?: Labels): number | undefined {
  const values: number[] = [];
  for (const sample of page.samples.get(name) ?? [])
    if (matches(sample.labels, match) && Number.isFinite(sample.value)) values.push(sample.value);
  if (values.length === 0) return undefined;
  if (how === "max") return Math.max(...values);
  const sum = values.reduce((a, b) => a + b, 0);
  return how === "sum" ? sum : sum / values.length;
}

export type HistogramResult = HistogramSnapshot | { readonly error: string } | undefined;

/**
 * The histogram `name` (the family name, without `_bucket`) from a page, summed over its label sets
 * (a replica serving two model names reports one histogram). Undefined when the page has no such
 * buckets; `{error}` when the buckets are inconsistent (no `+Inf`, a bad `le`, decreasing counts).
 */
export function histogramOf(page: ParsedPage, name: string, match?: Labels): HistogramResult {
  const buckets = page.samples.get(`${name}_bucket`);
  if (buckets === undefined || buckets.length === 0) return undefined;
  const series = new Map<string, { bounds: Map<number, number>; labels: Labels }>();
  for (const sample of buckets) {
    if (!matches(sample.labels, match)) continue;
    const leText = sample.labels.le;
    if (leText === undefined) return { error: `${name}_bucket without an "le" label` };
    const le = leText === "+Inf" || leText === "Inf" || leText === "inf" ? Infinity : Number(leText);
    if (Number.isNaN(le)) return { error: `${name}_bucket: bad le "${leText}"` };
    const key = labelKey(sample.labels, ["le"]);
    let entry = series.get(key);
    if (entry === undefined) {
      entry = { bounds: new Map(), labels: sample.labels };
      series.set(key, entry);
    }
    entry.bounds.set(le, sample.value);
  }
  if (series.size === 0) return undefined;
  const snapshots: HistogramSnapshot[] = [];
  for (const [key, { bounds, labels }] of series) {
    const le = [...bounds.keys()].sort((a, b) => a - b);
    if (le[le.length - 1] !== Infinity) return { error: `${name}: no +Inf bucket (series {${key}})` };
    const cumulative = le.map((bound) => bounds.get(bound)!);
    for (let i = 0; i < cumulative.length; i++) {
      const value = cumulative[i]!;
      if (!Number.isFinite(value) || value < 0)
        return { error: `${name}: bad bucket count ${value} (series {${key}})` };
      if (i > 0 && value < cumulative[i - 1]!)
        return { error: `${name}: bucket counts decrease at le=${le[i]} (series {${key}})` };
    }
    const without = Object.fromEntries(Object.entries(labels).filter(([k]) => k !== "le"));
    const count = pick(page.samples.get(`${name}_count`), without) ?? cumulative[cumulative.length - 1]!;
    const sum = pick(page.samples.get(`${name}_sum`), without) ?? NaN;
    snapshots.push({ le, cumulative, count, sum });
  }
  return mergeHistograms(snapshots);
}

function pick(samples: readonly Sample[] | undefined, labels: Labels): number | undefined {
  if (samples === undefined) return undefined;
  const key = labelKey(labels);
  for (const sample of samples) if (labelKey(sample.labels) === key) return sample.value;
  return undefined;
}

/** Cumulative count of `histogram` at `bound`: the count of its largest bucket <= bound. */
function cumulativeAt(histogram: HistogramSnapshot, bound: number): number {
  let value = 0;
  for (let i = 0; i < histogram.le.length; i++) {
    if (histogram.le[i]! <= bound) value = histogram.cumulative[i]!;
    else break;
  }
  return value;
}

/**
 * Merges histograms bucket by bucket (Prometheus `sum by (le)`). Identical layouts add up exactly.
 * Different layouts are merged on the union of their bounds, each histogram contributing its count
 * at the largest of its own bounds below (a lower bound: never invents observations below a bound
 * it did not measure). Undefined for an empty list.
 */
export function mergeHistograms(histograms: readonly HistogramSnapshot[]): HistogramSnapshot | undefined {
  const first = histograms[0];
  if (first === undefined) return undefined;
  if (histograms.length === 1) return first;
  const sameLayout = histograms.every(
    (h) => h.le.length === first.le.length && h.le.every((bound, i) => bound === first.le[i]),
  );
  const le = sameLayout ? [...first.le] : [...new Set(histograms.flatMap((h) => h.le))].sort((a, b) => a - b);
  const cumulative = le.map((bound, i) =>
    histograms.reduce((total, h) => total + (sameLayout ? h.cumulative[i]! : cumulativeAt(h, bound)), 0),
  );
  return {
    le,
    cumulative,
    count: histograms.reduce((total, h) => total + h.count, 0),
    sum: histograms.reduce((total, h) => total + h.sum, 0),
  };
}

/**
 * `now − past` bucket by bucket: the observations made between two scrapes. A reset (a count that went
 * down, e.g. the worker restarted) makes `now` itself the delta, as Prometheus' `increase` does.
 * Layouts that differ also fall back to `now`.
 */
export function histogramDelta(
  now: HistogramSnapshot,
  past: HistogramSnapshot | undefined,
): HistogramSnapshot {
  if (past === undefined) return now;
  const sameLayout = past.le.length === now.le.length && past.le.every((bound, i) => bound === now.le[i]);
  if (!sameLayout || now.count < past.count) return now;
  for (let i = 0; i < now.cumulative.length; i++) if (now.cumulative[i]! < past.cumulative[i]!) return now;
  return {
    le: now.le,
    cumulative: now.cumulative.map((value, i) => value - past.cumulative[i]!),
    count: now.count - past.count,
    sum: now.sum - past.sum,
  };
}

/**
 * Prometheus' `histogram_quantile`: linear interpolation inside the bucket holding rank q·count; the
 * +Inf bucket answers with the largest finite bound. Undefined with no observations.
 */
export function histogramQuantile(q: number, histogram: HistogramSnapshot): number | undefined {
  const total = histogram.cumulative[histogram.cumulative.length - 1] ?? 0;
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < histogram.le.length; i++) {
    const bound = histogram.le[i]!;
    const count = histogram.cumulative[i]!;
    if (count >= rank) {
      if (bound === Infinity) return i > 0 ? histogram.le[i - 1]! : undefined;
      if (i === 0 && bound <= 0) return bound;
      const inBucket = count - lowerCount;
      return inBucket > 0 ? lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / inBucket : bound;
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return undefined;
}

/**
 * A counter's recent samples, turned into an increase or rate over a window with Prometheus'
 * reset rule: when a value goes down the counter restarted from zero, so the increase across that
 * pair is the new value itself.
 */
export class CounterWindow {
  private readonly times: number[] = [];
  private readonly values: number[] = [];

  constructor(private readonly window_s: number) {}

  /** Records a sample (seconds, value); samples must come in time order. */
  add(time_s: number, value: number): void {
    if (!Number.isFinite(value)) return;
    const last = this.times[this.times.length - 1];
    if (last !== undefined && time_s <= last) return;
    this.times.push(time_s);
    this.values.push(value);
    // Keep one sample older than the window so a rate always spans it.
    while (this.times.length > 2 && this.times[1]! <= time_s - this.window_s) {
      this.times.shift();
      this.values.shift();
    }
  }

  /** Increase over the samples held (reset-aware); undefined with fewer than two samples. */
  increase(): number | undefined {
    if (this.values.length < 2) return undefined;
    let total = 0;
    for (let i = 1; i < this.values.length; i++) {
      const previous = this.values[i - 1]!;
      const value = this.values[i]!;
      total += value >= previous ? value - previous : value;
    }
    return total;
  }

  /** Per-second rate over the samples held; undefined with fewer than two samples. */
  rate(): number | undefined {
    const increase = this.increase();
    if (increase === undefined) return undefined;
    const span = this.times[this.times.length - 1]! - this.times[0]!;
    return span > 0 ? increase / span : undefined;
  }

  clear(): void {
    this.times.length = 0;
    this.values.length = 0;
  }
}
