import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";

function draws(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.nextUint32());
}

function meanAndVariance(values: readonly number[]): { mean: number; variance: number } {
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length;
  return { mean, variance };
}

function sample(n: number, draw: () => number): number[] {
  return Array.from({ length: n }, draw);
}

void describe("Rng", () => {
  void it("is a pure function of the seed", () => {
    assert.deepEqual(draws(new Rng(7), 1000), draws(new Rng(7), 1000));
    assert.notDeepEqual(draws(new Rng(7), 8), draws(new Rng(8), 8));
    // Seeds above 2^32 use their high bits too.
    assert.notDeepEqual(draws(new Rng(1), 8), draws(new Rng(1 + 2 ** 32), 8));
    const a = new Rng(123);
    const b = new Rng(123);
    for (let i = 0; i < 200; i++) {
      assert.equal(a.nextFloat(), b.nextFloat());
      assert.equal(a.normal(), b.normal());
      assert.equal(a.gamma(0.5, 2), b.gamma(0.5, 2));
      assert.equal(a.exponential(3), b.exponential(3));
      assert.equal(a.nextInt(17), b.nextInt(17));
    }
  });

  void it("replays the same numbers on every platform (golden values)", () => {
    // Generated workloads and random schedulers depend on these bits: changing the generator changes
    // every seeded result, so do it deliberately and update these values.
    assert.deepEqual(draws(new Rng(42), 4), [1146721639, 567313346, 3033639624, 4251608388]);
    assert.deepEqual(draws(new Rng(42).fork("arrivals"), 2), [1076526235, 2355248546]);
    assert.equal(new Rng(0).nextFloat(), 0.05064047479647804);
    assert.equal(new Rng(2 ** 40).nextUint32(), 3299567272);
  });

  void it("rejects seeds that are not safe integers", () => {
    assert.throws(() => new Rng(1.5), RangeError);
    assert.throws(() => new Rng(Number.NaN), RangeError);
    assert.throws(() => new Rng(2 ** 53), RangeError);
  });

  void it("forks are stable: independent of draws made on the parent, and do not advance it", () => {
    const fresh = new Rng(5);
    const used = new Rng(5);
    draws(used, 100);
    assert.deepEqual(draws(fresh.fork("lengths"), 50), draws(used.fork("lengths"), 50));

    const parent = new Rng(5);
    const before = new Rng(5);
    parent.fork("x");
    parent.fork("y");
    assert.deepEqual(draws(parent, 20), draws(before, 20), "forking does not consume parent draws");

    assert.deepEqual(draws(new Rng(5).fork("a").fork("b"), 10), draws(new Rng(5).fork("a").fork("b"), 10));
  });

  void it("forks with different labels or seeds are independent streams", () => {
    const root = new Rng(11);
    const streams = [root, root.fork("arrivals"), root.fork("lengths"), root.fork("scheduler"), new Rng(12)];
    const sequences = streams.map((rng) => draws(rng, 64));
    for (let i = 0; i < sequences.length; i++) {
      for (let j = i + 1; j < sequences.length; j++) {
        const shared = sequences[i]!.filter((value, k) => value === sequences[j]![k]).length;
        assert.equal(shared, 0, `streams ${i} and ${j} agree on ${shared} of 64 draws`);
      }
    }
    // Uniforms from two forks are uncorrelated.
    const a = root.fork("p");
    const b = root.fork("q");
    const n = 20_000;
    const xs = sample(n, () => a.nextFloat());
    const ys = sample(n, () => b.nextFloat());
    const mx = meanAndVariance(xs);
    const my = meanAndVariance(ys);
    let covariance = 0;
    for (let i = 0; i < n; i++) covariance += (xs[i]! - mx.mean) * (ys[i]! - my.mean);
    const correlation = covariance / n / Math.sqrt(mx.variance * my.variance);
    assert.ok(Math.abs(correlation) < 0.03, `correlation ${correlation}`);
  });

  void it("draws uniform floats in [0, 1) and uniform integers", () => {
    const rng = new Rng(2024);
    const n = 100_000;
    const floats = sample(n, () => rng.nextFloat());
    assert.ok(floats.every((x) => x >= 0 && x < 1));
    const { mean, variance } = meanAndVariance(floats);
    assert.ok(Math.abs(mean - 0.5) < 0.005, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1 / 12) < 0.002, `variance ${variance}`);

    // Chi-square over 10 bins, 9 degrees of freedom: 27.9 is the 0.999 quantile.
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < n; i++) {
      const k = rng.nextInt(10);
      assert.ok(Number.isInteger(k) && k >= 0 && k < 10);
      counts[k]!++;
    }
    const expected = n / 10;
    const chiSquare = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    assert.ok(chiSquare < 27.9, `chi-square ${chiSquare} for ${counts.join(",")}`);
  });

  void it("exponential, normal and gamma have the right moments (fixed seeds)", () => {
    const n = 100_000;
    const rng = new Rng(31337);

    const exponential = meanAndVariance(sample(n, () => rng.exponential(4)));
    assert.ok(Math.abs(exponential.mean - 0.25) < 0.005, `exponential mean ${exponential.mean}`);
    assert.ok(Math.abs(exponential.variance - 0.0625) < 0.003, `exponential var ${exponential.variance}`);

    const normal = meanAndVariance(sample(n, () => rng.normal()));
    assert.ok(Math.abs(normal.mean) < 0.015, `normal mean ${normal.mean}`);
    assert.ok(Math.abs(normal.variance - 1) < 0.02, `normal var ${normal.variance}`);

    for (const [shape, scale] of [
      [0.25, 4],
      [1, 1],
      [2.5, 0.4],
      [9, 2],
    ] as const) {
      const values = sample(n, () => rng.gamma(shape, scale));
      assert.ok(values.every((x) => x >= 0 && Number.isFinite(x)));
      const gamma = meanAndVariance(values);
      const mean = shape * scale;
      const variance = shape * scale * scale;
      assert.ok(Math.abs(gamma.mean - mean) < 0.02 * mean, `gamma(${shape}, ${scale}) mean ${gamma.mean}`);
      assert.ok(
        Math.abs(gamma.variance - variance) < 0.06 * variance,
        `gamma(${shape}, ${scale}) var ${gamma.variance}`,
      );
    }
  });
});
