import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import { ITL_BUCKETS_S, Histogram, TTFT_BUCKETS_S } from "../../src/serving/engine-metrics.ts";

/** Prometheus bucket rule: the first bucket whose upper bound is >= the value; the last takes the rest. */
function bucketOf(le: readonly number[], value: number): number {
  let index = 0;
  while (index < le.length - 1 && value > le[index]!) index++;
  return index;
}

void describe("engine histograms", () => {
  void it("put values on bounds, between them and beyond them in the Prometheus bucket", () => {
    for (const le of [TTFT_BUCKETS_S, ITL_BUCKETS_S, [Infinity], [1, Infinity]]) {
      const values = [-1, 0, Number.NaN, ...le, ...le.map((bound) => bound * 1.0001), 1e9];
      const rng = new Rng(3);
      for (let i = 0; i < 500; i++) values.push(rng.nextFloat() * 2 * (le.at(-2) ?? 1));
      const histogram = new Histogram(le);
      const expected = new Array<number>(le.length).fill(0);
      for (const value of values) {
        histogram.observe(value, 2);
        expected[bucketOf(le, value)]! += 2;
      }
      assert.deepEqual([...histogram.counts], expected);
      assert.equal(histogram.count, 2 * values.length);
    }
  });

  void it("puts a value equal to a bound in that bound's bucket", () => {
    const histogram = new Histogram([0.1, 0.5, Infinity]);
    histogram.observe(0.5);
    histogram.observe(0.1);
    histogram.observe(0.6);
    assert.deepEqual([...histogram.counts], [1, 1, 1]);
    assert.deepEqual(histogram.cumulative(), [1, 2, 3]);
  });
});
