/**
 * Time-bucketed window averages (autoscalers spec §1.2): Knative's stable and panic windows.
 *
 * Values are summed into buckets `granularity_s` wide (1 s in Knative). `bucketMean` divides the sum
 * over the window by the number of buckets spanned since the first write (so a young window averages
 * what it has seen, not zeros it never saw); `bucketEwma` weights each bucket by `α(1−α)^age`. Both
 * read the same plain-JSON state, so a policy picks the aggregation at read time.
 */

/** Knative rounds window averages down to 6 decimals so float noise cannot push `ceil` up a replica. */
const AVERAGE_DIGITS = 1e6;

interface Bucket {
  /** Bucket index: `floor(time / granularity_s)`. */
  readonly i: number;
  readonly sum: number;
}

export interface BucketWindowState {
  readonly window_s: number;
  readonly granularity_s: number;
  /** Buckets written within the window, oldest first; unwritten buckets are implicit zeros. */
  readonly buckets: readonly Bucket[];
  /** Bucket index of the first write since the window was last empty; undefined before any write. */
  readonly firstWrite: number | undefined;
  readonly lastWrite: number | undefined;
}

export function bucketWindow(window_s: number, granularity_s = 1): BucketWindowState {
  if (!(window_s > 0) || !(granularity_s > 0)) {
    throw new RangeError(
      `bucket window needs window_s > 0 and granularity_s > 0 (got ${window_s}, ${granularity_s})`,
    );
  }
  return { window_s, granularity_s, buckets: [], firstWrite: undefined, lastWrite: undefined };
}

/** Number of buckets the window holds: `ceil(W / g)`. */
export function bucketCount(state: BucketWindowState): number {
  return Math.ceil(state.window_s / state.granularity_s - 1e-9);
}

function bucketIndex(state: BucketWindowState, time: number): number {
  return Math.floor(time / state.granularity_s + 1e-9);
}

/**
 * Adds `value` to the bucket holding `now`. A write after a whole window of silence restarts the
 * span (`firstWrite`); a write older than the window is dropped, as Knative does.
 */
export function bucketWindowRecord(state: BucketWindowState, now: number, value: number): BucketWindowState {
  const n = bucketCount(state);
  const index = bucketIndex(state, now);
  let { firstWrite, lastWrite } = state;
  let buckets = state.buckets;
  if (lastWrite !== undefined && index <= lastWrite - n) return state;
  if (lastWrite === undefined || index - lastWrite >= n) {
    firstWrite = index;
    buckets = [];
  } else if (firstWrite === undefined || index < firstWrite) {
    firstWrite = index;
  }
  if (lastWrite === undefined || index > lastWrite) lastWrite = index;
  const kept = buckets.filter((bucket) => bucket.i > lastWrite - n && bucket.i !== index);
  const existing = buckets.find((bucket) => bucket.i === index);
  kept.push({ i: index, sum: (existing?.sum ?? 0) + value });
  kept.sort((a, b) => a.i - b.i);
  return { ...state, buckets: kept, firstWrite, lastWrite };
}

/**
 * Records `value` as the level during `(from_s, now]`: every bucket after the one holding `from_s` up
 * to the one holding `now` gets it (at most a window's worth). For callers that sample less often than
 * the bucket width, so a 2 s tick fills both 1 s buckets instead of leaving every other one at zero.
 * `from_s` undefined records only the bucket holding `now`.
 */
export function bucketWindowRecordSpan(
  state: BucketWindowState,
  from_s: number | undefined,
  now: number,
  value: number,
): BucketWindowState {
  const last = bucketIndex(state, now);
  const first =
    from_s === undefined ? last : Math.max(bucketIndex(state, from_s) + 1, last - bucketCount(state) + 1);
  let next = state;
  for (let index = Math.min(first, last); index <= last; index++) {
    next = bucketWindowRecord(next, index * state.granularity_s, value);
  }
  return next;
}

/** True when nothing was written for more than the window (Knative's "no data"). */
export function bucketWindowIsEmpty(state: BucketWindowState, now: number): boolean {
  if (state.lastWrite === undefined) return true;
  return bucketIndex(state, now) - state.lastWrite > bucketCount(state);
}

/**
 * `BucketMean(W, g)`: Σ buckets in `(now − W, now]` / buckets spanned since the first write, capped at
 * the window and shortened by the buckets that passed since the last write. 0 after a window of silence.
 */
export function bucketMean(state: BucketWindowState, now: number): number {
  const { firstWrite, lastWrite } = state;
  if (firstWrite === undefined || lastWrite === undefined) return 0;
  const n = bucketCount(state);
  const index = bucketIndex(state, now);
  const sinceLastWrite = Math.max(0, index - lastWrite);
  if (sinceLastWrite >= n) return 0;
  let sum = 0;
  for (const bucket of state.buckets) if (bucket.i > index - n && bucket.i <= index) sum += bucket.sum;
  const spanned = Math.min(lastWrite - firstWrite + 1, n - sinceLastWrite);
  return Math.floor((sum / spanned) * AVERAGE_DIGITS) / AVERAGE_DIGITS;
}

/** EWMA coefficient for `n` buckets: weights sum to ≥ 0.9999 over the window, but α is never below 0.2. */
export function ewmaSmoothingCoefficient(n: number): number {
  return Math.max(1 - Math.pow(0.0001, 1 / n), 0.2);
}

/**
 * `BucketEWMA(W, g)` (Knative's `weightedExponential`): Σ v·α(1−α)^age over the buckets in the window,
 * age in buckets before `now`. The weights are not renormalized, as upstream.
 */
export function bucketEwma(state: BucketWindowState, now: number): number {
  if (bucketWindowIsEmpty(state, now)) return 0;
  const n = bucketCount(state);
  const alpha = ewmaSmoothingCoefficient(n);
  const index = bucketIndex(state, now);
  let total = 0;
  for (const bucket of state.buckets) {
    const age = index - bucket.i;
    if (age >= 0 && age < n) total += bucket.sum * alpha * Math.pow(1 - alpha, age);
  }
  return total;
}
