import assert from "node:assert/strict";
import { test } from "node:test";

import {
  bucketCount,
  bucketEwma,
  bucketMean,
  bucketWindow,
  bucketWindowIsEmpty,
  bucketWindowRecord,
  bucketWindowRecordSpan,
  ewmaSmoothingCoefficient,
} from "../../src/policy/primitives/bucket-window.ts";
import {
  applyBehaviorLimits,
  eventLog,
  eventLogAppend,
  eventLogSum,
  knativeRateBounds,
  legacyScaleUpLimit,
  scaleDownLimit,
  scaleUpLimit,
  type ScalingRules,
} from "../../src/policy/primitives/rate-limit.ts";
import {
  ceilReplicas,
  groupReplicas,
  proportionalReplicas,
  readinessAdjustedReplicas,
  recommendWithTolerance,
  replicasForTotal,
  symmetricTolerance,
  withinTolerance,
} from "../../src/policy/primitives/recommender.ts";
import { deepFreeze, replica } from "./k8s-helpers.ts";

const tol = symmetricTolerance(0.1);
const defaultUp: ScalingRules = {
  select_policy: "max",
  policies: [
    { type: "pods", value: 4, period_s: 15 },
    { type: "percent", value: 100, period_s: 15 },
  ],
};
const defaultDown: ScalingRules = {
  select_policy: "max",
  policies: [{ type: "percent", value: 100, period_s: 15 }],
};

// --- recommender -------------------------------------------------------------------------------

void test("ceilReplicas ignores float noise just above an integer", () => {
  assert.equal((0.1 + 0.2) * 10, 3.0000000000000004);
  assert.equal(ceilReplicas((0.1 + 0.2) * 10), 3);
  assert.equal(ceilReplicas(11.01), 12);
  assert.equal(ceilReplicas(0), 0);
  assert.equal(ceilReplicas(0.2), 1);
  assert.equal(proportionalReplicas(1.2, 4), 5);
  assert.equal(replicasForTotal(140, 70), 2);
  assert.equal(replicasForTotal(141, 70), 3);
});

void test("tolerance is a band on the per-replica ratio, per direction", () => {
  assert.ok(withinTolerance(1.1, tol));
  assert.ok(withinTolerance(0.9, tol));
  assert.ok(!withinTolerance(1.11, tol));
  assert.ok(!withinTolerance(0.89, tol));
  const asymmetric = { up: 0.05, down: 0.3 };
  assert.ok(!withinTolerance(1.06, asymmetric));
  assert.ok(withinTolerance(0.75, asymmetric));
  assert.equal(recommendWithTolerance(1.05, 4, 4, tol), 4);
  assert.equal(recommendWithTolerance(1.2, 4, 4, tol), 5);
});

void test("replicas are grouped as ready, unready (starting), missing (unscraped) and ignored (draining)", () => {
  const replicas = [
    replica("a", "ready", { x: 3 }),
    replica("b", "ready", undefined),
    replica("c", "ready", { y: 1 }),
    replica("d", "starting", { x: 0 }),
    replica("e", "draining", { x: 9 }),
  ];
  const grouped = groupReplicas(replicas, (r) => r.metrics?.gauges["x"]);
  assert.deepEqual(grouped, { readyValues: [3], unready: 1, missing: 2, ignored: 1 });
});

void test("H1 (recommender): 4 ready pods [12, 14, 10, 12] at target 10 → ratio 1.2 → 5", () => {
  const result = readinessAdjustedReplicas({
    readyValues: [12, 14, 10, 12],
    unready: 0,
    missing: 0,
    target: 10,
    missingOnScaleDown: 10,
    current: 4,
    tolerance: tol,
  });
  assert.equal(result?.replicas, 5);
  assert.equal(result?.ratio, 1.2);
});

void test("H2 (recommender): scaling up with an unready pod recomputes 48/50 = 0.96, inside the band → current", () => {
  const result = readinessAdjustedReplicas({
    readyValues: [12, 14, 10, 12],
    unready: 1,
    missing: 0,
    target: 10,
    missingOnScaleDown: 10,
    current: 5,
    tolerance: tol,
  });
  assert.equal(result?.replicas, 5);
  assert.equal(result?.adjustedRatio, 0.96);
});

void test("H3 (recommender): a missing pod counts at target on scale-down: 0.4 → 0.55 → 3", () => {
  const result = readinessAdjustedReplicas({
    readyValues: [4, 4, 4],
    unready: 0,
    missing: 1,
    target: 10,
    missingOnScaleDown: 10,
    current: 4,
    tolerance: tol,
  });
  assert.equal(result?.replicas, 3);
  assert.equal(result?.ratio, 0.4);
  assert.equal(result?.adjustedRatio, 0.55);
});

void test("missing pods count as 0 on a scale-up, and an adjustment that flips direction holds", () => {
  // ratio 2.0 over 2 ready; 2 missing at 0 → 40/4/10 = 1.0: inside the band → hold.
  const held = readinessAdjustedReplicas({
    readyValues: [20, 20],
    unready: 0,
    missing: 2,
    target: 10,
    missingOnScaleDown: 10,
    current: 4,
    tolerance: tol,
  });
  assert.equal(held?.replicas, 4);
  assert.equal(held?.adjustedRatio, 1);
  // ratio 1.5 with 3 unready at 0 → 30/5/10 = 0.6: flips direction → hold.
  const flipped = readinessAdjustedReplicas({
    readyValues: [15, 15],
    unready: 3,
    missing: 0,
    target: 10,
    missingOnScaleDown: 10,
    current: 5,
    tolerance: tol,
  });
  assert.equal(flipped?.replicas, 5);
  assert.match(flipped?.note ?? "", /flips direction/);
  // No ready value: the metric is invalid.
  assert.equal(
    readinessAdjustedReplicas({
      readyValues: [],
      unready: 2,
      missing: 1,
      target: 10,
      missingOnScaleDown: 10,
      current: 3,
      tolerance: tol,
    }),
    undefined,
  );
});

void test("the final guard holds when the count would move against the ratio", () => {
  // 3 ready at 9.5 with 3 missing, current 4: ratio 0.95 is inside, but missing forces the slow path:
  // missing at target → (28.5 + 30) / 6 / 10 = 0.975, inside → hold.
  const inside = readinessAdjustedReplicas({
    readyValues: [9.5, 9.5, 9.5],
    unready: 0,
    missing: 3,
    target: 10,
    missingOnScaleDown: 10,
    current: 4,
    tolerance: tol,
  });
  assert.equal(inside?.replicas, 4);
  // ratio 0.5 over 1 ready, 5 missing at target: (5 + 50)/6/10 = 0.917 (inside) → hold; with a tight
  // tolerance the count ceil(55/10) = 6 > current 4 moves against a ratio < 1 → hold.
  const against = readinessAdjustedReplicas({
    readyValues: [5],
    unready: 0,
    missing: 5,
    target: 10,
    missingOnScaleDown: 10,
    current: 4,
    tolerance: symmetricTolerance(0.01),
  });
  assert.equal(against?.replicas, 4);
  assert.match(against?.note ?? "", /against/);
});

// --- bucket windows ----------------------------------------------------------------------------

void test("BucketMean divides by the buckets spanned since the first write, up to the window", () => {
  let window = bucketWindow(60);
  assert.equal(bucketCount(window), 60);
  assert.ok(bucketWindowIsEmpty(window, 0));
  assert.equal(bucketMean(window, 0), 0);
  window = bucketWindowRecord(window, 100, 10);
  assert.equal(bucketMean(window, 100), 10);
  window = bucketWindowRecord(window, 101.5, 20);
  assert.equal(bucketMean(window, 101.9), 15);
  // A gap inside the window counts as zeros: buckets 100..105 written at 100, 101, 105.
  window = bucketWindowRecord(window, 105, 30);
  assert.equal(bucketMean(window, 105), 60 / 6);
  // Reading later without writes shortens the divisor by the silent buckets (Knative's "partial window").
  assert.equal(bucketMean(window, 107), 60 / 6);
  // After a whole window of silence it reads 0 and is empty.
  assert.equal(bucketMean(window, 165), 0);
  assert.ok(bucketWindowIsEmpty(window, 166));
  // A write after the silence restarts the span.
  window = bucketWindowRecord(window, 200, 7);
  assert.equal(window.firstWrite, 200);
  assert.equal(bucketMean(window, 200), 7);
});

void test("BucketMean over a full window forgets buckets older than the window", () => {
  let window = bucketWindow(6);
  for (let t = 0; t < 20; t++) window = bucketWindowRecord(window, t, t < 10 ? 100 : 0);
  assert.equal(bucketMean(window, 19), 0);
  assert.ok(window.buckets.length <= 6);
  window = bucketWindow(6);
  for (let t = 0; t < 6; t++) window = bucketWindowRecord(window, t, t);
  assert.equal(bucketMean(window, 5), 15 / 6);
  window = bucketWindowRecord(window, 6, 6);
  assert.equal(bucketMean(window, 6), 21 / 6);
  // A write older than the window is dropped.
  assert.equal(bucketWindowRecord(window, 0, 1000), window);
});

void test("recording a span fills every bucket since the previous sample", () => {
  let window = bucketWindow(60);
  window = bucketWindowRecordSpan(window, undefined, 10, 140);
  window = bucketWindowRecordSpan(window, 10, 12, 140);
  assert.deepEqual(
    window.buckets.map((b) => b.i),
    [10, 11, 12],
  );
  assert.equal(bucketMean(window, 12), 140);
  // A long gap fills at most a window.
  window = bucketWindowRecordSpan(window, 12, 500, 5);
  assert.equal(window.buckets.length, 60);
  assert.equal(bucketMean(window, 500), 5);
});

void test("BucketEWMA weights recent buckets by α(1−α)^age without renormalizing", () => {
  assert.ok(Math.abs(ewmaSmoothingCoefficient(6) - (1 - Math.pow(0.0001, 1 / 6))) < 1e-12);
  assert.equal(ewmaSmoothingCoefficient(60), 0.2);
  let window = bucketWindow(4);
  const alpha = ewmaSmoothingCoefficient(4);
  for (const [t, v] of [
    [0, 10],
    [1, 10],
    [2, 5],
    [3, 5],
  ] as const) {
    window = bucketWindowRecord(window, t, v);
  }
  const expected = [5, 5, 10, 10].reduce((sum, v, age) => sum + v * alpha * Math.pow(1 - alpha, age), 0);
  assert.ok(Math.abs(bucketEwma(window, 3) - expected) < 1e-12);
  // One silent bucket later every weight shifts by one age.
  const later = [5, 5, 10].reduce((sum, v, k) => sum + v * alpha * Math.pow(1 - alpha, k + 1), 0);
  assert.ok(Math.abs(bucketEwma(window, 4) - later) < 1e-12);
  assert.equal(bucketEwma(window, 100), 0);
});

void test("bucket windows are plain JSON and never mutated", () => {
  const window = deepFreeze(bucketWindowRecord(bucketWindow(10), 1, 3));
  const next = bucketWindowRecord(window, 2, 4);
  assert.deepEqual(JSON.parse(JSON.stringify(next)), next);
  assert.equal(window.buckets.length, 1);
  assert.equal(next.buckets.length, 2);
});

// --- rate limits -------------------------------------------------------------------------------

void test("H4: default scaleUp from 10 without events allows max(10 + 4, 20) = 20", () => {
  assert.equal(scaleUpLimit(10, eventLog(), eventLog(), defaultUp, 0), 20);
  const limited = applyBehaviorLimits({
    current: 10,
    desired: 30,
    min: 1,
    max: 50,
    scaleUp: defaultUp,
    scaleDown: defaultDown,
    upEvents: eventLog(),
    downEvents: eventLog(),
    now: 0,
  });
  assert.equal(limited.replicas, 20);
  assert.equal(limited.limitedBy, "scaleUp policy");
});

void test("H5: default scaleDown from 10 floors at trunc(10·0) = 0, so a stabilized 2 is applied", () => {
  assert.equal(scaleDownLimit(10, eventLog(), eventLog(), defaultDown, 0), 0);
  const limited = applyBehaviorLimits({
    current: 10,
    desired: 2,
    min: 1,
    max: 50,
    scaleUp: defaultUp,
    scaleDown: defaultDown,
    upEvents: eventLog(),
    downEvents: eventLog(),
    now: 0,
  });
  assert.equal(limited.replicas, 2);
});

void test("H7: the legacy cap is max(2·current, 4)", () => {
  assert.equal(legacyScaleUpLimit(3), 6);
  assert.equal(legacyScaleUpLimit(1), 4);
});

void test("the event log sums changes inside the period and forgets events past retention", () => {
  let log = eventLog();
  log = eventLogAppend(log, 0, 4, 15);
  log = eventLogAppend(log, 10, 2, 15);
  assert.equal(eventLogSum(log, 10, 15), 6);
  assert.equal(eventLogSum(log, 15, 15), 2);
  log = eventLogAppend(log, 20, 1, 15);
  assert.deepEqual(
    log.events.map((e) => e.t),
    [10, 20],
  );
});

void test("policies measure from the replica count at the start of the period, both directions counted", () => {
  const up = eventLogAppend(eventLog(), 0, 10, 15); // 10 → 20 at t=0
  assert.equal(scaleUpLimit(20, up, eventLog(), defaultUp, 5), 20); // start 10: max(14, 20)
  assert.equal(scaleUpLimit(20, up, eventLog(), defaultUp, 15), 40); // event aged out
  // A scale-down inside the period counts too: after 10 → 20 → 12 the start is 12 − 10 + 8 = 10, not 2.
  const down = eventLogAppend(eventLog(), 5, 8, 15);
  assert.equal(scaleUpLimit(12, up, down, defaultUp, 6), 20);
  // Used-up budgets hold at current in applyBehaviorLimits.
  const held = applyBehaviorLimits({
    current: 20,
    desired: 30,
    min: 1,
    max: 50,
    scaleUp: { select_policy: "max", policies: [{ type: "pods", value: 4, period_s: 60 }] },
    scaleDown: defaultDown,
    upEvents: up,
    downEvents: eventLog(),
    now: 5,
  });
  assert.equal(held.replicas, 20);
});

void test("selectPolicy min picks the smallest change and disabled forbids the direction", () => {
  const minUp: ScalingRules = { ...defaultUp, select_policy: "min" };
  assert.equal(scaleUpLimit(10, eventLog(), eventLog(), minUp, 0), 14);
  assert.equal(scaleUpLimit(2, eventLog(), eventLog(), minUp, 0), 4);
  assert.equal(scaleUpLimit(10, eventLog(), eventLog(), { ...defaultUp, select_policy: "disabled" }, 0), 10);
  const twoDown: ScalingRules = {
    select_policy: "min",
    policies: [
      { type: "pods", value: 2, period_s: 60 },
      { type: "percent", value: 50, period_s: 60 },
    ],
  };
  assert.equal(scaleDownLimit(10, eventLog(), eventLog(), twoDown, 0), 8);
  assert.equal(scaleDownLimit(10, eventLog(), eventLog(), { ...twoDown, select_policy: "max" }, 0), 5);
  assert.equal(scaleDownLimit(10, eventLog(), eventLog(), { ...twoDown, select_policy: "disabled" }, 0), 10);
  // Percent rounding: up rounds up, down truncates; no float drift at 10 %.
  const tenPercent: ScalingRules = {
    select_policy: "max",
    policies: [{ type: "percent", value: 10, period_s: 15 }],
  };
  assert.equal(scaleUpLimit(10, eventLog(), eventLog(), tenPercent, 0), 11);
  assert.equal(scaleDownLimit(15, eventLog(), eventLog(), tenPercent, 0), 13);
});

void test("Knative rate bounds are relative to max(1, ready)", () => {
  assert.deepEqual(knativeRateBounds(2, 1000, 2), { maxUp: 2000, maxDown: 1 });
  assert.deepEqual(knativeRateBounds(6, 1000, 2), { maxUp: 6000, maxDown: 3 });
  assert.deepEqual(knativeRateBounds(0, 1000, 2), { maxUp: 1000, maxDown: 0 });
  assert.deepEqual(knativeRateBounds(6, 1000, 2, false), { maxUp: 6000, maxDown: 0 });
});
