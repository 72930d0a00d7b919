import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import { AZURE_CONV_TRACE } from "../../src/paths.ts";
import {
  DiurnalArrivals,
  GammaArrivals,
  PoissonArrivals,
  StepArrivals,
  TraceLengths,
  lengthSampler,
  openWorkload,
  readAllRequests,
  type GeneratorWorkloadSpec,
  type TraceRequest,
} from "../../src/workload/index.ts";
import { tempDir, writeFixture } from "./helpers.ts";

const dir = tempDir();

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

function coefficientOfVariation(values: ArrayLike<number>): number {
  const average = mean(values);
  let squares = 0;
  for (let i = 0; i < values.length; i++) squares += (values[i]! - average) ** 2;
  return Math.sqrt(squares / values.length) / average;
}

function gaps(process: { next(): number }, count: number): Float64Array {
  const result = new Float64Array(count);
  let previous = 0;
  for (let i = 0; i < count; i++) {
    const time = process.next();
    result[i] = time - previous;
    previous = time;
  }
  return result;
}

void describe("Rng", () => {
  void it("is deterministic and its forks are independent of draws made", () => {
    const first = new Rng(42);
    const second = new Rng(42);
    const drawn = Array.from({ length: 100 }, () => first.nextUint32());
    assert.deepEqual(
      Array.from({ length: 100 }, () => second.nextUint32()),
      drawn,
    );
    assert.notDeepEqual(
      Array.from({ length: 100 }, () => new Rng(43).nextUint32()),
      drawn,
    );
    const forkAfterDraws = first.fork("x").nextFloat();
    assert.equal(new Rng(42).fork("x").nextFloat(), forkAfterDraws);
    assert.notEqual(new Rng(42).fork("y").nextFloat(), forkAfterDraws);
  });

  void it("matches the published xoshiro128** reference outputs for state {1, 2, 3, 4}", () => {
    // The state is private; reaching into it here checks the generator core against its authors' vectors.
    const rng = new Rng(0) as unknown as {
      s0: number;
      s1: number;
      s2: number;
      s3: number;
      nextUint32(): number;
    };
    rng.s0 = 1;
    rng.s1 = 2;
    rng.s2 = 3;
    rng.s3 = 4;
    assert.deepEqual(
      Array.from({ length: 10 }, () => rng.nextUint32()),
      [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804],
    );
  });

  void it("pins the seeded sequence so runs replay across platforms and versions", () => {
    const rng = new Rng(1);
    assert.deepEqual(
      Array.from({ length: 4 }, () => rng.nextUint32()),
      PINNED_SEED_1,
    );
  });

  void it("draws floats in [0, 1), integers in [0, n) and sensible moments", () => {
    const rng = new Rng(7);
    const count = 200_000;
    const floats = new Float64Array(count);
    const normals = new Float64Array(count);
    const gammas = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      floats[i] = rng.nextFloat();
      assert.ok(floats[i]! >= 0 && floats[i]! < 1);
      const integer = rng.nextInt(6);
      assert.ok(Number.isInteger(integer) && integer >= 0 && integer < 6);
      normals[i] = rng.normal();
      gammas[i] = rng.gamma(0.5, 4);
    }
    assert.ok(Math.abs(mean(floats) - 0.5) < 0.005);
    assert.ok(Math.abs(mean(normals)) < 0.01);
    assert.ok(Math.abs(mean(Array.from(normals, (x) => x * x)) - 1) < 0.02);
    assert.ok(Math.abs(mean(gammas) / 2 - 1) < 0.02, `gamma mean ${mean(gammas)}`);
    assert.ok(Math.abs(coefficientOfVariation(gammas) - Math.sqrt(2)) < 0.03);
  });
});

void describe("arrival processes", () => {
  void it("Poisson: mean rate within 2% over 200k arrivals, exponential gaps (cv 1)", () => {
    const process = new PoissonArrivals(50, new Rng(1));
    const intervals = gaps(process, 200_000);
    const rate = 1 / mean(intervals);
    assert.ok(Math.abs(rate / 50 - 1) < 0.02, `rate ${rate}`);
    assert.ok(Math.abs(coefficientOfVariation(intervals) - 1) < 0.02);
  });

  for (const cv of [0.5, 2, 4]) {
    void it(`Gamma: cv ${cv} within 5% and mean rate within 2%`, () => {
      const intervals = gaps(new GammaArrivals(20, cv, new Rng(2)), 200_000);
      const measured = coefficientOfVariation(intervals);
      assert.ok(Math.abs(measured / cv - 1) < 0.05, `cv ${measured}`);
      assert.ok(Math.abs(1 / mean(intervals) / 20 - 1) < 0.02);
    });
  }

  void it("diurnal: counts match the integral of the rate within 3%", () => {
    const meanRate = 200;
    const amplitude = 0.8;
    const period = 100;
    const phase = 0.3;
    const process = new DiurnalArrivals(meanRate, amplitude, period, phase, new Rng(3));
    const integral = (from: number, to: number): number =>
      meanRate * (to - from) +
      ((meanRate * amplitude * period) / (2 * Math.PI)) *
        (Math.cos((2 * Math.PI * from) / period + phase) - Math.cos((2 * Math.PI * to) / period + phase));
    // Count per tenth of a period over 3.5 periods: the peaks and troughs must both match.
    const binWidth = period / 10;
    const bins = new Float64Array(35);
    for (let time = process.next(); time < bins.length * binWidth; time = process.next())
      bins[Math.floor(time / binWidth)]!++;
    let total = 0;
    for (let bin = 0; bin < bins.length; bin++) {
      total += bins[bin]!;
      const expected = integral(bin * binWidth, (bin + 1) * binWidth);
      assert.ok(
        Math.abs(bins[bin]! - expected) < 0.03 * expected + 4 * Math.sqrt(expected),
        `bin ${bin}: ${bins[bin]} vs ${expected}`,
      );
    }
    const expectedTotal = integral(0, bins.length * binWidth);
    assert.ok(Math.abs(total / expectedTotal - 1) < 0.03, `total ${total} vs ${expectedTotal}`);
  });

  void it("steps: each step gets its rate, a zero-rate step is silent, and the process ends", () => {
    const steps = [
      { until_s: 100, rate_per_s: 100 },
      { until_s: 150, rate_per_s: 0 },
      { until_s: 250, rate_per_s: 400 },
    ];
    const process = new StepArrivals(steps, new Rng(4));
    const counts = [0, 0, 0];
    let previous = 0;
    for (let time = process.next(); Number.isFinite(time); time = process.next()) {
      assert.ok(time >= previous);
      previous = time;
      counts[time < 100 ? 0 : time < 150 ? 1 : 2]!++;
    }
    assert.ok(Math.abs(counts[0]! / 10_000 - 1) < 0.04, `${counts[0]}`);
    assert.equal(counts[1], 0);
    assert.ok(Math.abs(counts[2]! / 40_000 - 1) < 0.02, `${counts[2]}`);
    assert.equal(process.next(), Number.POSITIVE_INFINITY);
  });

  void it("rejects bad parameters", () => {
    assert.throws(() => new PoissonArrivals(0, new Rng(1)), /rate_per_s/);
    assert.throws(() => new GammaArrivals(1, -1, new Rng(1)), /cv/);
    assert.throws(() => new DiurnalArrivals(1, 1.5, 10, 0, new Rng(1)), /amplitude/);
    assert.throws(
      () =>
        new StepArrivals(
          [
            { until_s: 10, rate_per_s: 1 },
            { until_s: 5, rate_per_s: 1 },
          ],
          new Rng(1),
        ),
      /steps\[1\]\.until_s/,
    );
  });
});

void describe("length distributions", () => {
  void it("fixed, uniform (inclusive) and lognormal (target mean and cv, clamped)", () => {
    const rng = new Rng(5);
    assert.equal(lengthSampler("prompt", { dist: "fixed", value: 7 }, rng)(), 7);
    const uniform = lengthSampler("prompt", { dist: "uniform", min: 3, max: 5 }, rng);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(uniform());
    assert.deepEqual([...seen].sort(), [3, 4, 5]);
    const lognormal = lengthSampler("output", { dist: "lognormal", mean: 500, cv: 1.5 }, rng);
    const samples = Float64Array.from({ length: 200_000 }, () => lognormal());
    assert.ok(Math.abs(mean(samples) / 500 - 1) < 0.03, `mean ${mean(samples)}`);
    assert.ok(
      Math.abs(coefficientOfVariation(samples) / 1.5 - 1) < 0.1,
      `cv ${coefficientOfVariation(samples)}`,
    );
    const clamped = lengthSampler("output", { dist: "lognormal", mean: 2, cv: 3, max: 10 }, rng);
    for (let i = 0; i < 10_000; i++) {
      const value = clamped();
      assert.ok(Number.isInteger(value) && value >= 1 && value <= 10);
    }
    assert.throws(() => lengthSampler("prompt", { dist: "uniform", min: 5, max: 3 }, rng), /max/);
    assert.throws(() => lengthSampler("prompt", { dist: "fixed", value: 0 }, rng), /positive integer/);
  });

  void it("samples (prompt, output) pairs from a trace, together or independently", () => {
    const path = writeFixture(
      dir,
      "pairs.csv",
      "arrival_timestamp,prompt_size,token_size\n0,10,1\n1,20,2\n2,30,3\n",
    );
    const paired = TraceLengths.fromFile(path, "auto", false, new Rng(6));
    assert.equal(paired.size, 3);
    const independent = TraceLengths.fromFile(path, "splitwise", true, new Rng(6));
    let mismatched = 0;
    for (let i = 0; i < 1000; i++) {
      paired.draw();
      assert.equal(paired.prompt_tokens, paired.output_tokens * 10);
      independent.draw();
      assert.ok(
        [10, 20, 30].includes(independent.prompt_tokens) && [1, 2, 3].includes(independent.output_tokens),
      );
      if (independent.prompt_tokens !== independent.output_tokens * 10) mismatched++;
    }
    assert.ok(mismatched > 500, `${mismatched}`);
  });
});

void describe("generator workloads", () => {
  const spec: GeneratorWorkloadSpec = {
    type: "generator",
    seed: 11,
    arrival: { process: "gamma", rate_per_s: 10, cv: 2 },
    lengths: {
      prompt: { dist: "lognormal", mean: 1000, cv: 1 },
      output: { dist: "uniform", min: 1, max: 300 },
    },
    num_requests: 5000,
  };

  void it("same seed gives the identical sequence, another seed a different one", () => {
    const first = readAllRequests(openWorkload(spec, dir));
    assert.equal(first.length, 5000);
    assert.deepEqual(readAllRequests(openWorkload(spec, dir)), first);
    assert.notDeepEqual(readAllRequests(openWorkload({ ...spec, seed: 12 }, dir)), first);
    assert.deepEqual(
      first.map((request) => request.id),
      Array.from({ length: 5000 }, (_, i) => i),
    );
    for (const request of first) {
      assert.ok(Number.isInteger(request.prompt_tokens) && request.prompt_tokens >= 1);
      assert.ok(request.output_tokens >= 1 && request.output_tokens <= 300);
    }
  });

  void it("arrival times do not depend on the length distributions", () => {
    const arrivals = (requests: TraceRequest[]): number[] => requests.map((request) => request.arrival_s);
    const other = {
      ...spec,
      lengths: { prompt: { dist: "fixed", value: 5 }, output: { dist: "fixed", value: 5 } },
    } as const;
    assert.deepEqual(
      arrivals(readAllRequests(openWorkload(other, dir))),
      arrivals(readAllRequests(openWorkload(spec, dir))),
    );
  });

  void it("stops at duration_s or num_requests, whichever comes first", () => {
    const byDuration = readAllRequests(
      openWorkload(
        {
          ...spec,
          arrival: { process: "poisson", rate_per_s: 100 },
          num_requests: undefined,
          duration_s: 10,
        },
        dir,
      ),
    );
    assert.ok(byDuration.length > 900 && byDuration.length < 1100, `${byDuration.length}`);
    assert.ok(byDuration.every((request) => request.arrival_s < 10));
    const byCount = readAllRequests(
      openWorkload(
        { ...spec, arrival: { process: "poisson", rate_per_s: 100 }, num_requests: 50, duration_s: 10 },
        dir,
      ),
    );
    assert.equal(byCount.length, 50);
    assert.throws(() => openWorkload({ ...spec, num_requests: undefined }, dir), /never ends/);
  });

  void it("says how many requests it will give at most only when num_requests bounds it", () => {
    const bounded = openWorkload({ ...spec, num_requests: 50, duration_s: 10 }, dir);
    assert.equal(bounded.maxRequests, 50);
    assert.ok(readAllRequests(bounded).length <= 50);
    const timed = openWorkload({ ...spec, num_requests: undefined, duration_s: 10 }, dir);
    assert.equal(timed.maxRequests, undefined);
  });

  void it("steps needs no limit; diurnal and lengths from a trace work through openWorkload", () => {
    const steps = readAllRequests(
      openWorkload(
        {
          type: "generator",
          seed: 1,
          arrival: { process: "steps", steps: [{ until_s: 10, rate_per_s: 5 }] },
          lengths: { from_trace: AZURE_CONV_TRACE },
        },
        dir,
      ),
    );
    assert.ok(steps.length > 20 && steps.length < 90);
    const diurnal = readAllRequests(
      openWorkload(
        {
          type: "generator",
          seed: 1,
          arrival: { process: "diurnal", mean_rate_per_s: 5, amplitude: 0.5, period_s: 60 },
          lengths: { from_trace: "pairs.csv", independent: true },
          duration_s: 60,
        },
        dir,
      ),
    );
    assert.ok(diurnal.length > 200 && diurnal.length < 400);
  });
});

// xoshiro128** seeded through splitmix32 from seed 1; changing these breaks replay of every seeded run.
const PINNED_SEED_1 = [1397995331, 2532543399, 3016175832, 228607218];
