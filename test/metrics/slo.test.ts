import assert from "node:assert/strict";
import { test } from "node:test";

import { evaluateSlo, requestMeetsSlo, SPLITWISE_SLO } from "../../src/metrics/slo.ts";
import type { SloColumns } from "../../src/metrics/slo.ts";

/** Columns where the unloaded reference is 1 s, so slowdowns equal the raw latencies. */
function columns(requests: readonly { ttft: number; tbt: number; e2e?: number }[]): SloColumns {
  return {
    ttft_s: requests.map((r) => r.ttft),
    tbt_s: requests.map((r) => r.tbt),
    ttft_slowdown: requests.map((r) => r.ttft),
    tbt_slowdown: requests.map((r) => r.tbt),
    e2e_slowdown: requests.map((r) => r.e2e ?? 1),
  };
}

const HAND_MADE = columns([
  { ttft: 1, tbt: 1 }, // meets
  { ttft: 6, tbt: 5 }, // meets: both exactly at the p99 thresholds (≤)
  { ttft: 7, tbt: 1 }, // misses on TTFT
  { ttft: 1, tbt: 5.5 }, // misses on TBT
]);

void test("attainment counts unfinished requests as misses", () => {
  const result = evaluateSlo(HAND_MADE, 6);
  assert.equal(result.meeting, 2);
  assert.equal(result.arrived, 6);
  assert.equal(result.attainment, 2 / 6);
});

void test("absolute targets tighten the per-request SLO", () => {
  const result = evaluateSlo(HAND_MADE, 4, { ...SPLITWISE_SLO, ttft_s: 5 });
  assert.equal(result.meeting, 1);
  assert.equal(result.attainment, 0.25);
  assert.equal(result.thresholds.ttft_s, 5);
  assert.equal(result.thresholds.tbt_s, null);
  assert.equal(requestMeetsSlo(1, 1, 1, 1, { ...SPLITWISE_SLO, tbt_s: 0.5 }), false);
});

void test("dropping a request cannot raise attainment", () => {
  const all = evaluateSlo(
    columns([
      { ttft: 1, tbt: 1 },
      { ttft: 9, tbt: 1 },
    ]),
    2,
  );
  const dropped = evaluateSlo(columns([{ ttft: 1, tbt: 1 }]), 2);
  assert.equal(all.attainment, 0.5);
  assert.equal(dropped.attainment, 0.5);
});

void test("the Splitwise rule needs every percentile strictly below its threshold", () => {
  const fast = evaluateSlo(columns(Array.from({ length: 100 }, () => ({ ttft: 1, tbt: 1, e2e: 1 }))), 100);
  assert.equal(fast.meets_splitwise_slo, true);
  assert.equal(fast.attainment, 1);
  assert.deepEqual(fast.per_percentile.tbt_slowdown.p90, { value: 1, threshold: 1.5, pass: true });

  // 2 of 100 requests with TTFT slowdown 10: p99 = 10 > 6 fails, p50 and p90 still pass.
  const tail = Array.from({ length: 100 }, (_, i) => ({ ttft: i >= 98 ? 10 : 1, tbt: 1, e2e: 1 }));
  const slowTail = evaluateSlo(columns(tail), 100);
  assert.equal(slowTail.meets_splitwise_slo, false);
  assert.equal(slowTail.per_percentile.ttft_slowdown.p50.pass, true);
  assert.equal(slowTail.per_percentile.ttft_slowdown.p99.pass, false);
  assert.equal(slowTail.attainment, 0.98);

  // Exactly at a threshold fails the strict rule: TBT p50 = 1.25.
  const atThreshold = evaluateSlo(columns([{ ttft: 1, tbt: 1.25, e2e: 1 }]), 1);
  assert.equal(atThreshold.per_percentile.tbt_slowdown.p50.pass, false);
  assert.equal(atThreshold.meets_splitwise_slo, false);
});

void test("no completed requests: attainment 0 of arrivals, rule fails", () => {
  const none = evaluateSlo(columns([]), 3);
  assert.equal(none.attainment, 0);
  assert.equal(none.meets_splitwise_slo, false);
  assert.ok(Number.isNaN(evaluateSlo(columns([]), 0).attainment));
});
