/**
 * numpy-compatible summary statistics over typed arrays.
 *
 * Upstream splitwise-sim writes `summary.csv` with numpy (`mean`, `std` with ddof 0, `percentile` with
 * the default "linear" method) and scipy `gmean`. The functions here reproduce those results bit for
 * bit where it is cheap to do so: sums use numpy's pairwise summation (same association order, so the
 * same rounding), and interpolation uses numpy's two-sided lerp. Empty input gives NaN everywhere
 * (JSON writers turn NaN into null).
 */

/** Every statistic upstream's `summary.csv` reports for one metric (upstream's `median` equals p50). */
export interface Description {
  readonly mean: number;
  readonly std: number;
  readonly min: number;
  readonly max: number;
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly p999: number;
  /** Geometric mean over the strictly positive values only; see `geomean`. */
  readonly geomean: number;
}

/** Numeric columns the statistics accept (Float32 columns are widened exactly to double). */
export type NumericColumn = Float64Array | Float32Array | Int32Array | readonly number[];

/** Same block size as numpy's `PW_BLOCKSIZE`: below it, eight running sums; above it, split in two. */
const PAIRWISE_BLOCK = 128;

/**
 * Sum in numpy's pairwise order (numpy `add.reduce` on a contiguous float64 array), so means and
 * standard deviations round exactly like upstream's.
 */
export function pairwiseSum(values: NumericColumn, start = 0, count = values.length - start): number {
  if (count < 8) {
    let sum = 0;
    for (let i = start; i < start + count; i++) sum += values[i]!;
    return sum;
  }
  if (count <= PAIRWISE_BLOCK) {
    let r0 = values[start]!;
    let r1 = values[start + 1]!;
    let r2 = values[start + 2]!;
    let r3 = values[start + 3]!;
    let r4 = values[start + 4]!;
    let r5 = values[start + 5]!;
    let r6 = values[start + 6]!;
    let r7 = values[start + 7]!;
    const unrolledEnd = start + count - (count % 8);
    let i = start + 8;
    for (; i < unrolledEnd; i += 8) {
      r0 += values[i]!;
      r1 += values[i + 1]!;
      r2 += values[i + 2]!;
      r3 += values[i + 3]!;
      r4 += values[i + 4]!;
      r5 += values[i + 5]!;
      r6 += values[i + 6]!;
      r7 += values[i + 7]!;
    }
    let sum = r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7));
    for (; i < start + count; i++) sum += values[i]!;
    return sum;
  }
  let half = Math.floor(count / 2);
  half -= half % 8;
  return pairwiseSum(values, start, half) + pairwiseSum(values, start + half, count - half);
}

/** Arithmetic mean (numpy `mean`); NaN when empty. */
export function mean(values: NumericColumn): number {
  if (values.length === 0) return NaN;
  return pairwiseSum(values) / values.length;
}

/** Population standard deviation, ddof = 0 (numpy `std` default); NaN when empty. */
export function std(values: NumericColumn): number {
  const n = values.length;
  if (n === 0) return NaN;
  const average = pairwiseSum(values) / n;
  const squaredDeviations = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const deviation = values[i]! - average;
    squaredDeviations[i] = deviation * deviation;
  }
  return Math.sqrt(pairwiseSum(squaredDeviations) / n);
}

/** Smallest value; NaN when empty or when any value is NaN (like numpy `min`). */
export function min(values: NumericColumn): number {
  if (values.length === 0) return NaN;
  let smallest = Infinity;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (Number.isNaN(value)) return NaN;
    if (value < smallest) smallest = value;
  }
  return smallest;
}

/** Largest value; NaN when empty or when any value is NaN (like numpy `max`). */
export function max(values: NumericColumn): number {
  if (values.length === 0) return NaN;
  let largest = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (Number.isNaN(value)) return NaN;
    if (value > largest) largest = value;
  }
  return largest;
}

/**
 * Geometric mean over the strictly positive values only: zeros and negatives are skipped, NaN when
 * no value is positive. Queue times and nth-token overheads are often exactly 0, which would make
 * the plain geometric mean 0 and useless (spec §8 item 21); skipping them keeps it informative.
 * `geomeanUpstream` reproduces scipy's `gmean` instead.
 */
export function geomean(values: NumericColumn): number {
  let positiveCount = 0;
  for (let i = 0; i < values.length; i++) if (values[i]! > 0) positiveCount++;
  if (positiveCount === 0) return NaN;
  const logs = new Float64Array(positiveCount);
  let next = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value > 0) logs[next++] = Math.log(value);
  }
  return Math.exp(mean(logs));
}

/**
 * scipy `gmean` as upstream uses it: exp(mean(log x)) over every value, so any 0 gives 0, any
 * negative value gives NaN, and empty input gives NaN.
 */
export function geomeanUpstream(values: NumericColumn): number {
  const logs = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) logs[i] = Math.log(values[i]!);
  return Math.exp(mean(logs));
}

/**
 * Quantile `q` in [0, 1] of an ascending array with numpy's default "linear" method: h = (n-1)·q,
 * lo = floor(h), value = x[lo] + (h-lo)·(x[lo+1]-x[lo]). Like numpy, the interpolation is evaluated
 * from the upper neighbour when the weight is at least 0.5 (x[lo+1] - (1-w)·(x[lo+1]-x[lo])), which
 * is what makes results match numpy to the last bit. NaN when empty or when the array holds a NaN
 * (typed-array sort puts NaN last).
 */
export function percentileSorted(sorted: NumericColumn, q: number): number {
  const n = sorted.length;
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
  if (n === 0 || Number.isNaN(sorted[n - 1]!)) return NaN;
  const virtualIndex = (n - 1) * q;
  const lowerIndex = Math.min(Math.floor(virtualIndex), n - 1);
  const upperIndex = Math.min(lowerIndex + 1, n - 1);
  const weight = virtualIndex - lowerIndex;
  const lower = sorted[lowerIndex]!;
  const upper = sorted[upperIndex]!;
  const difference = upper - lower;
  return weight >= 0.5 ? upper - difference * (1 - weight) : lower + difference * weight;
}

function containsNaN(values: Float64Array): boolean {
  for (let i = 0; i < values.length; i++) if (values[i] !== values[i]) return true;
  return false;
}

/** Quickselect rounds before falling back to sorting the remaining range (guards against O(n²) inputs). */
const SELECT_ROUNDS_BEFORE_SORT = 64;

/**
 * Rearranges `values[left..right]` so that `values[k]` holds the value a full sort would put there,
 * with nothing larger before it and nothing smaller after it (Hoare partition, median-of-three pivot).
 */
function selectInPlace(values: Float64Array, k: number, left: number, right: number): void {
  for (let round = 0; right > left; round++) {
    if (round === SELECT_ROUNDS_BEFORE_SORT) {
      values.subarray(left, right + 1).sort();
      return;
    }
    const first = values[left]!;
    const middle = values[(left + right) >>> 1]!;
    const last = values[right]!;
    const pivot = Math.max(Math.min(first, middle), Math.min(Math.max(first, middle), last));
    let i = left;
    let j = right;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const swapped = values[i]!;
        values[i] = values[j]!;
        values[j] = swapped;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return; // values[j+1..i-1] all equal the pivot
  }
}

/**
 * Several quantiles (each in [0, 1]) of unsorted values, identical to `percentileSorted` on a sorted
 * copy but in O(n) per quantile by selection instead of an O(n log n) sort: the run summary needs only
 * a few quantiles of columns with millions of rows. Works on one copy; the input is left untouched.
 */
export function percentiles(values: NumericColumn, quantiles: readonly number[]): number[] {
  for (const q of quantiles) {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
  }
  const n = values.length;
  const work = new Float64Array(values);
  if (n === 0 || containsNaN(work)) return quantiles.map(() => NaN);
  const results = new Array<number>(quantiles.length).fill(NaN);
  const ascending = quantiles.map((q, index) => ({ q, index })).sort((a, b) => a.q - b.q);
  // Each selection leaves everything below its rank in place, so later (larger) ranks search only above it.
  let searchFrom = 0;
  for (const { q, index } of ascending) {
    const virtualIndex = (n - 1) * q;
    const lowerIndex = Math.min(Math.floor(virtualIndex), n - 1);
    selectInPlace(work, lowerIndex, searchFrom, n - 1);
    searchFrom = lowerIndex;
    const lower = work[lowerIndex]!;
    let upper = lower;
    if (lowerIndex + 1 < n) {
      upper = Infinity;
      for (let i = lowerIndex + 1; i < n; i++) if (work[i]! < upper) upper = work[i]!;
    }
    const weight = virtualIndex - lowerIndex;
    const difference = upper - lower;
    results[index] = weight >= 0.5 ? upper - difference * (1 - weight) : lower + difference * weight;
  }
  return results;
}

/** numpy takes percentiles in percent and divides by 100; doing the same keeps e.g. 99.9 → 0.9990000000000001. */
function quantileOfPercent(percent: number): number {
  return percent / 100;
}

/**
 * All statistics of one metric. Mean, std and geomean run over the values in their given order
 * (summation order matters for the last bit); min, max and percentiles use one sorted copy.
 */
export function describe(values: NumericColumn): Description {
  const sorted = sortedCopy(values);
  const n = sorted.length;
  const hasNaN = n > 0 && Number.isNaN(sorted[n - 1]!);
  return {
    mean: mean(values),
    std: std(values),
    min: n === 0 || hasNaN ? NaN : sorted[0]!,
    max: n === 0 || hasNaN ? NaN : sorted[n - 1]!,
    p50: percentileSorted(sorted, quantileOfPercent(50)),
    p90: percentileSorted(sorted, quantileOfPercent(90)),
    p95: percentileSorted(sorted, quantileOfPercent(95)),
    p99: percentileSorted(sorted, quantileOfPercent(99)),
    p999: percentileSorted(sorted, quantileOfPercent(99.9)),
    geomean: geomean(values),
  };
}

/** Sorted Float64 copy of a column, for callers that need several percentiles of it. */
export function sortedCopy(values: NumericColumn): Float64Array {
  // The constructor copies typed arrays natively; Float64Array.from would go through the iterator.
  return new Float64Array(values).sort();
}
