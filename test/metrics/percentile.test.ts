import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import {
  describe,
  geomean,
  geomeanUpstream,
  max,
  mean,
  min,
  pairwiseSum,
  percentiles,
  percentileSorted,
  std,
} from "../../src/metrics/percentile.ts";
import { readFixtureText, SPLITWISE_REFERENCE } from "../fixtures/reference.ts";

const REFERENCE_RUNS = join(SPLITWISE_REFERENCE, "runs");

void test("linear percentiles follow numpy on small arrays", () => {
  const four = Float64Array.of(1, 2, 3, 4);
  assert.equal(percentileSorted(four, 0.5), 2.5);
  assert.equal(percentileSorted(four, 0.9), 3.7);
  assert.equal(percentileSorted(four, 0), 1);
  assert.equal(percentileSorted(four, 1), 4);
  const odd = Float64Array.of(10, 20, 30);
  assert.equal(percentileSorted(odd, 0.5), 20);
  assert.equal(percentileSorted(odd, 0.25), 15);
  const single = Float64Array.of(7);
  for (const q of [0, 0.5, 0.99, 1]) assert.equal(percentileSorted(single, q), 7);
  // numpy: np.percentile([0, 1, 2], 99.9) == 1.9980000000000002 (99.9/100 is not 0.999 exactly)
  assert.equal(describe(Float64Array.of(0, 1, 2)).p999, 1.9980000000000002);
});

void test("percentileSorted rejects quantiles outside [0, 1]", () => {
  assert.throws(() => percentileSorted(Float64Array.of(1), 50), RangeError);
});

void test("basic statistics use population std and skip nothing", () => {
  const values = Float64Array.of(2, 4, 4, 4, 5, 5, 7, 9);
  assert.equal(mean(values), 5);
  assert.equal(std(values), 2);
  assert.equal(min(values), 2);
  assert.equal(max(values), 9);
});

void test("pairwise summation matches a plain sum on exactly representable values", () => {
  const values = Float64Array.from({ length: 1000 }, (_, i) => i);
  assert.equal(pairwiseSum(values), 499500);
});

void test("geomean skips non-positive values; the upstream variant returns 0", () => {
  const values = Float64Array.of(1, 4, 0);
  assert.equal(geomean(values), 2);
  assert.equal(geomeanUpstream(values), 0);
  assert.ok(Number.isNaN(geomean(Float64Array.of(0, 0))));
  assert.equal(geomeanUpstream(Float64Array.of(1, 4)), 2);
});

void test("empty input gives NaN everywhere", () => {
  const description = describe(new Float64Array(0));
  for (const value of Object.values(description)) assert.ok(Number.isNaN(value));
});

void test("describe does not reorder its input", () => {
  const values = Float64Array.of(3, 1, 2);
  describe(values);
  assert.deepEqual(Array.from(values), [3, 1, 2]);
});

void test("describe reproduces upstream summary.csv of the 3-request example run", () => {
  // ex_baseline_h_example: detailed/0.csv response_times and summary.csv values.
  const responseTimes = Float64Array.of(1.7447429609198237, 0.49925474455559815, 0.7818727274953154);
  const description = describe(responseTimes);
  assert.equal(description.mean, 1.0086234776569125);
  assert.equal(description.std, 0.5331492294531117);
  assert.equal(description.p90, 1.5521689142349222);
  assert.equal(description.p95, 1.6484559375773729);
  assert.equal(description.p99, 1.7254855562513336);
  assert.equal(description.p999, 1.7428172204529748);
});

function parseCsv(path: string): { header: string[]; rows: number[][] } {
  const lines = readFixtureText(path).trimEnd().split("\n");
  return {
    header: lines[0]!.split(","),
    rows: lines.slice(1).map((line) => line.split(",").map(Number)),
  };
}

function assertClose(actual: number, expected: number, label: string): void {
  const relative = Math.abs(actual - expected) / Math.max(Math.abs(expected), Number.MIN_VALUE);
  assert.ok(relative <= 1e-12, `${label}: ${actual} vs ${expected} (relative ${relative})`);
}

const AZURE_RUN = join(REFERENCE_RUNS, "azure_replay_baseline_h4_tokenjsq");

void test("describe reproduces upstream summary.csv of the Azure replay run", () => {
  const detailed = parseCsv(join(AZURE_RUN, "detailed", "0.csv.gz"));
  const summary = parseCsv(join(AZURE_RUN, "summary.csv"));
  const summaryValue = (column: string): number => summary.rows[0]![summary.header.indexOf(column)]!;
  assert.equal(detailed.rows.length, 19366);
  for (const metric of ["ttft_times", "tbt_times", "response_times"]) {
    const column = detailed.header.indexOf(metric);
    const description = describe(Float64Array.from(detailed.rows, (row) => row[column]!));
    for (const statistic of ["mean", "std", "p50", "p90", "p99", "max"] as const) {
      assertClose(description[statistic], summaryValue(`${metric}_${statistic}`), `${metric}_${statistic}`);
    }
  }
});

void test("percentiles by selection equal percentiles of a sorted copy", () => {
  const quantiles = [0.99, 0.5, 0, 1, 0.9, 0.999];
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let trial = 0; trial < 400; trial++) {
    const n = 1 + Math.floor(random() * 500);
    const fewDistinct = trial % 3 === 0;
    const values = Float64Array.from({ length: n }, (_, i) =>
      fewDistinct ? Math.floor(random() * 4) : trial % 3 === 1 ? n - i : random(),
    );
    const sorted = Float64Array.from(values).sort();
    const selected = percentiles(values, quantiles);
    quantiles.forEach((q, index) => assert.equal(selected[index], percentileSorted(sorted, q)));
  }
  assert.deepEqual(percentiles(Float64Array.of(1, NaN), [0.5]), [NaN]);
  assert.deepEqual(percentiles([], [0.5]), [NaN]);
});
