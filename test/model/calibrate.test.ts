import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { calibrateRoofline, errorStats, measuredPoints, nelderMead } from "../../src/model/calibrate.ts";
import { loadCatalog } from "../../src/model/catalog.ts";
import {
  ProfilePerformanceModel,
  readProfileCsv,
  rowShape,
  type ProfileRow,
} from "../../src/model/profile.ts";
import { resolveRooflineParams, RooflinePerformanceModel } from "../../src/model/roofline.ts";

const catalog = loadCatalog();
const fixture = (name: string): ProfileRow[] =>
  readProfileCsv(join(import.meta.dirname, "fixtures", name), catalog);

void test("Nelder-Mead finds the Rosenbrock minimum", () => {
  const result = nelderMead((x) => 100 * (x[1]! - x[0]! ** 2) ** 2 + (1 - x[0]!) ** 2, [-1.2, 1], {
    maxEvaluations: 5000,
    tolerance: 1e-16,
  });
  assert.ok(Math.abs(result.x[0]! - 1) < 1e-4 && Math.abs(result.x[1]! - 1) < 1e-4, JSON.stringify(result));
});

void test("calibration recovers the factors that generated synthetic measurements", () => {
  const truth = resolveRooflineParams({
    prefill: { compute: 0.42, memory: 0.55, overhead_s: 0.004 },
    decode: { compute: 0.3, memory: 0.66, overhead_s: 0.0015 },
  });
  const it = new RooflinePerformanceModel(truth, catalog).forInstance("llama3-8b", "h100", 1);
  const rows: ProfileRow[] = [];
  // Short prompts and small batches are memory-bound, long prompts and large decode batches compute-bound
  for (const [phase, batches, tokens] of [
    ["prefill", [1, 2, 8], [16, 64, 512, 4096]],
    ["decode", [1, 16, 256, 1024], [128, 4096]],
  ] as const)
    for (const batch of batches)
      for (const t of tokens)
        rows.push({
          model: "llama3-8b",
          gpu: "h100-sxm-80gb",
          tp: 1,
          phase,
          batch,
          tokens: t,
          ms: it.iterationTime(rowShape(phase, batch, t)) * 1000,
          line: rows.length + 2,
        });
  const result = calibrateRoofline(rows, { catalog, regularization: 0 });
  for (const phase of ["prefill", "decode"] as const) {
    const fitted = result.params[phase];
    const expected = truth[phase];
    assert.ok(Math.abs(fitted.compute / expected.compute - 1) < 1e-3, `${phase} compute ${fitted.compute}`);
    assert.ok(Math.abs(fitted.memory / expected.memory - 1) < 1e-3, `${phase} memory ${fitted.memory}`);
    assert.ok(
      Math.abs(fitted.overhead_s / expected.overhead_s - 1) < 1e-2,
      `${phase} overhead ${fitted.overhead_s}`,
    );
    assert.ok(result[phase]!.after.worst < 1e-3);
  }
  assert.equal(result.fittedCollectiveLatency, false); // one TP degree: latency is not identifiable
});

void test("calibration reduces the error on the measured llama2-70b/H100/TP8 fixture", () => {
  const rows = fixture("llama2-70b-h100-tp8.csv");
  const result = calibrateRoofline(rows, { catalog });
  const prefill = result.prefill!;
  const decode = result.decode!;
  assert.equal(prefill.points, 13);
  assert.equal(decode.points, 19);
  for (const fit of [prefill, decode]) {
    assert.ok(fit.lossAfter < fit.lossBefore / 4, `${fit.phase}: ${fit.lossBefore} -> ${fit.lossAfter}`);
    assert.ok(fit.after.median < fit.before.median / 3, `${fit.phase} median`);
    assert.ok(fit.after.worst < fit.before.worst, `${fit.phase} worst`);
  }
  // Measured numbers (docs/performance-models.md): prefill 51.8% -> 14.6% median, decode 65.9% -> 2.1%
  assert.ok(prefill.after.median < 0.2 && prefill.after.worst < 0.4);
  assert.ok(decode.after.median < 0.05 && decode.after.worst < 0.12);
  // The same predictions through the performance model
  const perf = new RooflinePerformanceModel(result.params, catalog);
  const points = measuredPoints(rows).filter((p) => p.phase === "decode");
  const stats = errorStats(
    points.map((p) =>
      perf.forInstance(p.model, p.gpu, p.tp).iterationTime(rowShape(p.phase, p.batch, p.tokens)),
    ),
    points.map((p) => p.seconds),
  );
  // (equal up to rounding: the fit recombines precomputed terms in another order)
  assert.ok(
    Math.abs(stats.median - decode.after.median) < 1e-12 &&
      Math.abs(stats.worst - decode.after.worst) < 1e-12,
  );
  // Deterministic: the same fit twice
  assert.deepEqual(calibrateRoofline(rows, { catalog }).params, result.params);
});

void test("factors fitted on several TP degrees include the collective latency", () => {
  const rows = [...fixture("llama2-70b-h100-tp8.csv"), ...fixture("bloom-176b-h100-tp8.csv")];
  const tp8Only = calibrateRoofline(rows, { catalog });
  assert.equal(tp8Only.fittedCollectiveLatency, false);
  // Fitting latency anyway is allowed and never worse in-sample
  const withLatency = calibrateRoofline(rows, { catalog, fitCollectiveLatency: true });
  const loss = (r: typeof tp8Only) => r.prefill!.lossAfter * 13 * 2 + r.decode!.lossAfter * 19 * 2;
  assert.ok(loss(withLatency) <= loss(tp8Only) + 1e-12);
});

void test("a calibrated roofline under the profile model predicts held-out points better", () => {
  const rows = fixture("llama2-70b-h100-tp8.csv");
  const params = calibrateRoofline(rows, { catalog }).params;
  const decodeRows = rows.filter((r) => r.phase === "decode");
  const predicted = decodeRows.map((held) =>
    new ProfilePerformanceModel(
      rows.filter((r) => r !== held),
      { catalog, roofline: params },
    )
      .forInstance(held.model, held.gpu, held.tp)
      .iterationTime(rowShape(held.phase, held.batch, held.tokens)),
  );
  const stats = errorStats(
    predicted,
    decodeRows.map((r) => r.ms / 1000),
  );
  assert.ok(stats.median < 0.05 && stats.worst < 0.1, JSON.stringify(stats));
});
