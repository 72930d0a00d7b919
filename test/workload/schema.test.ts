import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openWorkload, readAllRequests, workloadSpecSchema } from "../../src/workload/index.ts";
import { tempDir, writeFixture } from "./helpers.ts";

const dir = tempDir();

void describe("workloadSpecSchema", () => {
  void it("fills in the trace defaults", () => {
    assert.deepEqual(workloadSpecSchema.parse({ type: "trace", path: "t.csv" }), {
      type: "trace",
      path: "t.csv",
      format: "auto",
      offset_s: 0,
      time_scale: 1,
    });
  });

  void it("fills in generator defaults", () => {
    const parsed = workloadSpecSchema.parse({
      type: "generator",
      arrival: { process: "diurnal", mean_rate_per_s: 2, amplitude: 0.5, period_s: 86_400 },
      lengths: { from_trace: "t.csv" },
      duration_s: 60,
    });
    // No seed: a simulation config gives the generator the run's seed (see openConfiguredWorkload).
    assert.deepEqual(parsed, {
      type: "generator",
      arrival: { process: "diurnal", mean_rate_per_s: 2, amplitude: 0.5, period_s: 86_400, phase: 0 },
      lengths: { from_trace: "t.csv", format: "auto", independent: false },
      duration_s: 60,
    });
  });

  void it("rejects unknown keys, bad values and generators that never end", () => {
    const reject = (value: unknown, pattern: RegExp): void => {
      const result = workloadSpecSchema.safeParse(value);
      assert.equal(result.success, false);
      assert.match(JSON.stringify(result.error?.issues), pattern);
    };
    reject({ type: "trace", path: "t.csv", ofset_s: 1 }, /ofset_s/);
    const lognormal = (max: number) => ({
      type: "generator",
      arrival: { process: "poisson", rate_per_s: 1 },
      lengths: { prompt: { dist: "lognormal", mean: 1000, cv: 1, max }, output: { dist: "fixed", value: 5 } },
      num_requests: 10,
    });
    reject(lognormal(10), /max must be >= mean/);
    assert.equal(workloadSpecSchema.safeParse(lognormal(4096)).success, true);
    reject(
      {
        type: "generator",
        arrival: { process: "diurnal", mean_rate_per_s: 2, amplitude: 0.5, period_s: 1e-320 },
        lengths: { from_trace: "t.csv" },
        duration_s: 60,
      },
      /period_s/,
    );
    reject({ type: "trace", path: "t.csv", format: "csv" }, /format/);
    reject({ type: "trace", path: "t.csv", start_s: 10, end_s: 5 }, /end_s must be greater/);
    const generator = {
      type: "generator",
      seed: 1,
      arrival: { process: "poisson", rate_per_s: 1 },
      lengths: { prompt: { dist: "fixed", value: 10 }, output: { dist: "uniform", min: 1, max: 10 } },
    };
    reject(generator, /never ends/);
    reject({ ...generator, num_requests: 5, arrival: { process: "poisson", rate_per_s: -1 } }, /rate_per_s/);
    reject(
      {
        ...generator,
        num_requests: 5,
        arrival: { process: "diurnal", mean_rate_per_s: 1, amplitude: 2, period_s: 1 },
      },
      /amplitude/,
    );
    reject(
      {
        ...generator,
        num_requests: 5,
        lengths: { prompt: { dist: "uniform", min: 5, max: 1 }, output: { dist: "fixed", value: 1 } },
      },
      /max must be >= min/,
    );
    reject(
      {
        ...generator,
        arrival: {
          process: "steps",
          steps: [
            { until_s: 5, rate_per_s: 1 },
            { until_s: 5, rate_per_s: 2 },
          ],
        },
      },
      /until_s must increase/,
    );
    // steps end by themselves
    assert.equal(
      workloadSpecSchema.safeParse({
        ...generator,
        arrival: { process: "steps", steps: [{ until_s: 5, rate_per_s: 1 }] },
      }).success,
      true,
    );
  });

  void it("parsed specs open directly", () => {
    writeFixture(dir, "sw.csv", "arrival_timestamp,prompt_size,token_size\n0,5,6\n2,7,8\n");
    const spec = workloadSpecSchema.parse({ type: "trace", path: "sw.csv", time_scale: 0.5 });
    assert.deepEqual(readAllRequests(openWorkload(spec, dir)), [
      { id: 0, arrival_s: 0, prompt_tokens: 5, output_tokens: 6 },
      { id: 1, arrival_s: 1, prompt_tokens: 7, output_tokens: 8 },
    ]);
  });
});
