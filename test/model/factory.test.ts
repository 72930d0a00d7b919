import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { createPerformanceModel, performanceModelSpecSchema } from "../../src/model/factory.ts";
import { DbPerformanceModel } from "../../src/model/perf-db.ts";
import { ProfilePerformanceModel } from "../../src/model/profile.ts";
import { RooflinePerformanceModel } from "../../src/model/roofline.ts";
import { PACKAGE_ROOT } from "../../src/paths.ts";

const shape = { prefillTokens: 4096, numPrefill: 1, numDecode: 0, decodeContextTokens: 0 };

void test("db: the bundled Splitwise table by default (upstream golden value)", () => {
  const model = createPerformanceModel({ type: "db" }, PACKAGE_ROOT);
  assert.ok(model instanceof DbPerformanceModel);
  assert.equal(model.forInstance("bloom-176b", "h100-80gb", 8).iterationTime(shape), 0.6495982770284172);
});

void test("roofline and profile build from a spec; relative paths resolve against baseDir", () => {
  const roofline = createPerformanceModel(
    { type: "roofline", efficiency: { prefill: { compute: 0.3 } }, mixed_batch_factor: 1.2 },
    PACKAGE_ROOT,
  );
  assert.ok(roofline instanceof RooflinePerformanceModel);
  assert.equal(roofline.params.prefill.compute, 0.3);
  assert.equal(roofline.params.mixed_batch_factor, 1.2);
  const profile = createPerformanceModel(
    { type: "profile", profile: "fixtures/llama2-70b-h100-tp8.csv" },
    join(PACKAGE_ROOT, "test", "model"),
  );
  assert.ok(profile instanceof ProfilePerformanceModel);
  assert.ok(
    Math.abs(profile.forInstance("llama2-70b", "h100-80gb", 8).iterationTime(shape) - 0.3902908279560506) <
      1e-12,
  );
});

void test("misplaced or invalid keys are named", () => {
  assert.throws(
    () => createPerformanceModel({ type: "roofline", table: "x.csv" }, "."),
    /performance_model\.table applies to type db only/,
  );
  assert.throws(
    () => createPerformanceModel({ type: "profile" }, "."),
    /performance_model\.profile: type profile needs a CSV/,
  );
  assert.throws(
    () => createPerformanceModel({ type: "roofline", efficiency: { decode: { memory: 2 } } }, "."),
    /performance_model\.efficiency\.decode\.memory: Too big/,
  );
  assert.throws(
    () => createPerformanceModel({ type: "roofline", efficiency: { prefil: {} } as never }, "."),
    /performance_model\.efficiency: Unrecognized key: "prefil"/,
  );
  assert.throws(
    () => createPerformanceModel({ type: "db", efficiency: {} }, "."),
    /efficiency applies to type roofline and profile only/,
  );
});

void test("the spec schema fills the type and leaves mixed_batch_factor to the factory", () => {
  assert.deepEqual(performanceModelSpecSchema.parse({}), { type: "db" });
  const spec = performanceModelSpecSchema.parse({ type: "profile", profile: "p.csv", outside: "roofline" });
  assert.equal(spec.outside, "roofline");
  assert.throws(() => performanceModelSpecSchema.parse({ type: "roofline", tabel: "x" }));
  assert.throws(
    () => createPerformanceModel({ type: "profile", profile: "p.csv", outside: "nearest" as never }, "."),
    /performance_model\.outside: expected anchored or roofline/,
  );
});
