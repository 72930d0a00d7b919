import assert from "node:assert/strict";
import { test } from "node:test";

import type { KthenaConfigInput } from "../../src/policy/kthena/config.ts";
import { correct, initialCorrectionState } from "../../src/policy/kthena/correct.ts";
import type { Behavior, CorrectionState } from "../../src/policy/kthena/correct.ts";
import {
  aggregateExternal,
  distribute,
  isRatioMetric,
  scalingOrder,
} from "../../src/policy/kthena/optimizer.ts";
import { createKthenaPolicy, quantileInDelta } from "../../src/policy/kthena/policy.ts";
import type { KthenaState } from "../../src/policy/kthena/policy.ts";
import { enforceRoleRatio } from "../../src/policy/kthena/ratio.ts";
import { recommend } from "../../src/policy/kthena/recommend.ts";
import type { RecommendInput } from "../../src/policy/kthena/recommend.ts";
import type { Observation, Policy } from "../../src/policy/types.ts";
import { GAUGES, HISTOGRAMS } from "../../src/policy/types.ts";
import { deepFreeze, histogramOf, kobservation, kpool, kreplica, uniform } from "./kthena-helpers.ts";
import { SEED_003_SMART_SCALING } from "../../src/policy/kthena/seed-example.ts";

const M = "m";

function rec(overrides: Partial<RecommendInput>): RecommendInput {
  return {
    min: 1,
    max: 100,
    current: 4,
    tolerance: 0.1,
    targets: { [M]: 10 },
    unready: 0,
    ready: [],
    external: {},
    ...overrides,
  };
}

const each = (...values: number[]): Record<string, number>[] => values.map((value) => ({ [M]: value }));

// ---------------------------------------------------------------------------------------------
// §10.2 conformance vectors

void test("T1: target 10, current 4, Σ 60 recommends 6 (correct and bug-compatible)", () => {
  assert.equal(recommend(rec({ current: 4, ready: each(15, 15, 15, 15) })).replicas, 6);
  assert.equal(recommend(rec({ current: 4, ready: each(60), upstreamCompat: true })).replicas, 6);
});

void test("T1 end to end: with the webhook defaults no behavior limit binds", () => {
  for (const upstream_compat of [false, true]) {
    const policy = createKthenaPolicy(
      { upstream_compat, metrics: [{ name: GAUGES.waiting, target_value: 10 }] },
      [{ name: "p", role: "mixed" }],
    );
    const pool = kpool({ name: "p", replicas: uniform("p", 4, { [GAUGES.waiting]: 15 }) });
    const { decision } = policy.decide(kobservation(0, [pool]), policy.init(0));
    assert.deepEqual(decision.targets, { p: { desired: 6 } }, `upstream_compat ${upstream_compat}`);
  }
});

void test("T2: target 10, current 5, Σ 10.5 → HPA-correct 2, bug-compatible 5 (tolerance on Σ/target)", () => {
  assert.equal(recommend(rec({ current: 5, ready: each(2.1, 2.1, 2.1, 2.1, 2.1) })).replicas, 2);
  assert.equal(recommend(rec({ current: 5, ready: each(10.5), upstreamCompat: true })).replicas, 5);
});

void test("§4.5 findings: no hysteresis and the unready divisor, correct vs bug-compatible", () => {
  // Current 4, Σ 42: HPA holds (ratio 1.05), upstream moves to 5.
  assert.equal(recommend(rec({ current: 4, ready: each(10.5, 10.5, 10.5, 10.5) })).replicas, 4);
  assert.equal(recommend(rec({ current: 4, ready: each(42), upstreamCompat: true })).replicas, 5);
  // Current 4, Σ 20: upstream gives 4 with one unready replica (divides by 1 + 1), 2 without.
  assert.equal(recommend(rec({ current: 4, ready: each(20), unready: 1, upstreamCompat: true })).replicas, 4);
  assert.equal(recommend(rec({ current: 4, ready: each(20), upstreamCompat: true })).replicas, 2);
});

void test("HPA readiness and missing-metric rules in the default mode (H2, H3)", () => {
  // H2: 4 ready [12, 14, 10, 12] + 1 unready at 0: 48/50 = 0.96 is within tolerance → 5.
  assert.equal(recommend(rec({ current: 5, ready: each(12, 14, 10, 12), unready: 1 })).replicas, 5);
  // H3: 3 reporting [4, 4, 4] + 1 missing counted at target: 22/40 = 0.55 → 3.
  assert.equal(recommend(rec({ current: 4, ready: [...each(4, 4, 4), {}] })).replicas, 3);
  // Scale-up with unready: they count as 0 over ready + unready: 60/40 → 6.
  assert.equal(recommend(rec({ current: 4, ready: each(30, 30), unready: 2 })).replicas, 6);
});

void test("a metric without data blocks scale-down by default; with no data at all the tick is skipped", () => {
  const targets = { [M]: 10, other: 10 };
  const partial = recommend(rec({ current: 5, targets, ready: each(2, 2, 2, 2, 2) }));
  assert.equal(partial.replicas, 5);
  assert.match(partial.note, /refusing to scale down/);
  assert.equal(
    recommend(rec({ current: 5, targets, ready: each(2, 2, 2, 2, 2), upstreamCompat: true })).replicas,
    1,
  );
  const none = recommend(rec({ ready: [{}, {}] }));
  assert.equal(none.skip, true);
});

void test("external metrics are totals; bounds snap first", () => {
  assert.equal(recommend(rec({ current: 4, external: { [M]: 60 } })).replicas, 6);
  assert.equal(recommend(rec({ current: 4, external: { [M]: 42 } })).replicas, 4); // within tolerance
  assert.equal(recommend(rec({ current: 0, min: 2 })).replicas, 2);
  assert.equal(recommend(rec({ current: 12, max: 10 })).replicas, 10);
});

/** Kthena's webhook-injected behavior (spec §4.2), with overrides. */
function behavior(overrides: {
  up?: Partial<Behavior["scale_up"]["stable"]>;
  panic?: Partial<Behavior["scale_up"]["panic"]>;
  down?: Partial<Behavior["scale_down"]>;
}): Behavior {
  return {
    scale_up: {
      stable: {
        instances: 4,
        percent: 100,
        period_s: 60,
        select_policy: "Or",
        stabilization_window_s: 0,
        ...overrides.up,
      },
      panic: { percent: 0, period_s: 0, threshold_percent: 200, hold_s: 0, ...overrides.panic },
    },
    scale_down: {
      instances: 0,
      percent: 100,
      period_s: 60,
      select_policy: "Or",
      stabilization_window_s: 300,
      ...overrides.down,
    },
  };
}

function step(b: Behavior, state: CorrectionState, now: number, current: number, recommended: number) {
  return correct({ now, current, recommended, min: 0, max: 100, behavior: b }, state);
}

void test("T3: stable scale-up from a lowest level of 2 is capped at +4 (Or +100 %) → 6", () => {
  const b = behavior({});
  const settled = step(b, initialCorrectionState(b), 0, 2, 2).state;
  const result = step(b, settled, 30, 2, 10);
  assert.equal(result.panic, false);
  assert.equal(result.replicas, 6);
});

void test("T4: scale-down is held at the highest recommendation of the window → 8", () => {
  const b = behavior({});
  const seen = step(b, initialCorrectionState(b), 0, 8, 8).state;
  assert.equal(step(b, seen, 60, 8, 3).replicas, 8);
});

void test("T5: panic (threshold 200 %, hold 60 s, 1000 % per 10 s) takes the recommendation at once", () => {
  const b = behavior({ panic: { percent: 1000, period_s: 10, threshold_percent: 200, hold_s: 60 } });
  const result = step(b, initialCorrectionState(b), 100, 2, 5);
  assert.equal(result.panic, true);
  assert.equal(result.replicas, 5);
  assert.equal(result.state.panicEndsAt_s, 160);
  // The panic cap: 2 + trunc(2 · 1000 %) = 22.
  assert.equal(step(b, initialCorrectionState(b), 100, 2, 40).replicas, 22);
});

void test("T6 and the worked optimizer example: A {100, 0..4}, B {60, 1..8}, rate 200 %", () => {
  const params = [
    { cost: 100, min: 0, max: 4 },
    { cost: 60, min: 1, max: 8 },
  ];
  const order = scalingOrder(params, 200);
  assert.deepEqual(
    order.map((block) => `${"AB"[block.index]}${block.size}@${block.cost}`),
    ["B1@60", "A1@100", "A1@100", "B2@120", "A2@200", "B4@240"],
  );
  assert.deepEqual(distribute(params, order, 5), [2, 3]);
  assert.deepEqual(distribute(params, order, 9), [4, 5]);
  // Nested and monotone: raising T never takes a replica from a type.
  let previous = distribute(params, order, 0);
  for (let total = 1; total <= 14; total++) {
    const next = distribute(params, order, total);
    assert.ok(
      next.every((value, index) => value >= previous[index]!),
      `T=${total}`,
    );
    previous = next;
  }
  assert.deepEqual(distribute(params, order, 100), [4, 8]);
  assert.deepEqual(scalingOrder(params, 100), [
    { index: 1, size: 7, cost: 60 },
    { index: 0, size: 4, cost: 100 },
  ]);
});

void test("T7 and §4.9: the ratio repair favours scaling up", () => {
  const bounds = { P: { min: 0, max: 3 }, D: { min: 0, max: 20 } };
  const constraint = { numerator_role: "P", denominator_role: "D", min_ratio: 0.25, max_ratio: 1 };
  const t7 = enforceRoleRatio({ P: 2, D: 20 }, bounds, constraint);
  assert.deepEqual(t7.replicas, { P: 3, D: 12 });
  assert.equal(t7.adjusted, true);
  assert.equal(t7.violated, false);
  const wide = { P: { min: 0, max: 10 }, D: { min: 0, max: 20 } };
  assert.deepEqual(enforceRoleRatio({ P: 6, D: 2 }, wide, constraint).replicas, { P: 6, D: 6 });
  // Inside the band: unchanged; both zero: scale to zero together; one zero: seeded to 1 first.
  assert.deepEqual(enforceRoleRatio({ P: 2, D: 4 }, wide, constraint), {
    replicas: { P: 2, D: 4 },
    adjusted: false,
    ratio: 0.5,
    violated: false,
  });
  assert.deepEqual(enforceRoleRatio({ P: 0, D: 0 }, wide, constraint).replicas, { P: 0, D: 0 });
  assert.deepEqual(enforceRoleRatio({ P: 0, D: 8 }, wide, constraint).replicas, { P: 2, D: 8 });
  // Binary-fraction noise does not add a replica: 0.1 · 30 = 3.0000000000000004.
  const tenth = { ...constraint, min_ratio: 0.1 };
  assert.deepEqual(
    enforceRoleRatio({ P: 1, D: 30 }, { P: { min: 0, max: 9 }, D: { min: 0, max: 30 } }, tenth).replicas,
    { P: 3, D: 30 },
  );
  // The bounds cannot meet the band: reported as violated.
  const tight = enforceRoleRatio(
    { P: 1, D: 20 },
    { P: { min: 1, max: 1 }, D: { min: 10, max: 20 } },
    constraint,
  );
  assert.deepEqual(tight.replicas, { P: 1, D: 10 });
  assert.equal(tight.violated, true);
});

// ---------------------------------------------------------------------------------------------
// Panic and stabilization over time

void test("panic holds scale-down off for panicModeHold after the last crossing, then stable rules resume", () => {
  const b = behavior({
    up: { instances: 1, period_s: 15 },
    panic: { percent: 1000, period_s: 10, threshold_percent: 200, hold_s: 60 },
    down: { instances: 1, period_s: 15, stabilization_window_s: 0 },
  });
  let state = initialCorrectionState(b);
  const ticks: [now: number, current: number, recommended: number, expected: number, panic: boolean][] = [
    [0, 2, 5, 5, true], // 5 ≥ 200 % of 2: panic until 60
    [30, 5, 2, 5, true], // in panic: never down
    [45, 5, 12, 12, true], // crosses again: panic until 105, cap 5 + 50
    [90, 12, 3, 12, true],
    [105, 12, 3, 12, true], // the hold end is inclusive
    [106, 12, 3, 3, false], // stable scale-down (instances 1 Or 100 % = unlimited)
  ];
  for (const [now, current, recommended, expected, panic] of ticks) {
    const result = step(b, state, now, current, recommended);
    assert.equal(result.replicas, expected, `t=${now}`);
    assert.equal(result.panic, panic, `t=${now} panic`);
    state = result.state;
  }
});

void test("stable scale-up is rate-limited relative to the lowest level of the period", () => {
  const b = behavior({ up: { instances: 1, percent: 50, period_s: 60, select_policy: "And" } });
  let state = initialCorrectionState(b);
  const seen: number[] = [];
  let current = 4;
  for (let now = 0; now <= 120; now += 15) {
    const result = step(b, state, now, current, 40);
    state = result.state;
    current = result.replicas;
    seen.push(current);
  }
  // And: min(+1, +50 %) over the lowest level in the last 60 s.
  // (a level counts once it has been decided: the 4 before the first tick was never "in effect").
  assert.deepEqual(seen, [5, 6, 6, 6, 6, 7, 7, 7, 7]);
});

const SEED_SMART = SEED_003_SMART_SCALING;

async function seedPolicy(): Promise<Policy<KthenaState>> {
  const { loadKthenaPolicyText } = await import("../../src/policy/kthena/config.ts");
  return createKthenaPolicy(loadKthenaPolicyText(SEED_SMART, "seed003.yaml"), [
    { name: "llm-model", role: "mixed" },
  ]);
}

function llmPool(desired: number, count: number, gpu: number, concurrent: number) {
  return kpool({
    name: "llm-model",
    desired,
    replicas: uniform("llm-model", count, { [GAUGES.gpuUtilization]: gpu, [GAUGES.concurrent]: concurrent }),
  });
}

void test("seed 003 policy: scale-down waits out the 3 min stabilization window over many ticks", async () => {
  const policy = await seedPolicy();
  assert.equal(policy.interval_s, 15);
  let state = policy.init(0);
  // Busy: 4 replicas at 100 % GPU → 5 (gpu 400/80); 500 < 150 % of 4 = 600, so no panic.
  let result = policy.decide(kobservation(0, [llmPool(4, 4, 100, 10)]), state);
  assert.deepEqual(result.decision.targets, { "llm-model": { desired: 5 } });
  state = result.state;
  // Idle from t=15: the recommendation is 2, but 5 stays the highest one seen in 3 min.
  for (let now = 15; now < 180; now += 15) {
    result = policy.decide(kobservation(now, [llmPool(5, 5, 20, 1)]), state);
    assert.deepEqual(result.decision.targets, { "llm-model": { desired: 5 } }, `t=${now}`);
    assert.match(result.decision.reasons.join("\n"), /recommended 2 .*stabilized to 5/);
    state = result.state;
  }
  result = policy.decide(kobservation(180, [llmPool(5, 5, 20, 1)]), state);
  assert.deepEqual(result.decision.targets, { "llm-model": { desired: 2 } });
});

void test("seed 003 policy: a burst past 150 % enters panic for 5 min and skips the stable cap", async () => {
  const policy = await seedPolicy();
  let state = policy.init(0);
  // gpu 320 % per replica over 2 → 8 ≥ 150 % of 2: panic; the panic period is unset (0), so no cap.
  let result = policy.decide(kobservation(0, [llmPool(2, 2, 320, 1)]), state);
  assert.deepEqual(result.decision.targets, { "llm-model": { desired: 8 } });
  assert.match(result.decision.reasons[0]!, /panic/);
  state = result.state;
  // Load gone 4 min later: still in panic, so no scale-down.
  result = policy.decide(kobservation(240, [llmPool(8, 8, 1, 1)]), state);
  assert.deepEqual(result.decision.targets, { "llm-model": { desired: 8 } });
  state = result.state;
  // After the hold (300 s) and the 3 min window since the last high recommendation: down to min 2.
  result = policy.decide(kobservation(420, [llmPool(8, 8, 1, 1)]), state);
  assert.deepEqual(result.decision.targets, { "llm-model": { desired: 2 } });
});

// ---------------------------------------------------------------------------------------------
// Purity

void test("decide is pure: inputs are not mutated, results are deterministic and the state is plain JSON", () => {
  const policy = createKthenaPolicy(
    {
      metrics: [
        { name: GAUGES.waiting, target_value: 10 },
        { name: HISTOGRAMS.ttft, target_value: 1 },
      ],
      behavior: { scale_up: { panic: { hold_s: 60, period_s: 15 } } },
    },
    [{ name: "p", role: "mixed" }],
  );
  const le = [0.1, 1, 10, Infinity];
  const replicas = (n: number) =>
    Array.from({ length: 3 }, (_, index) =>
      kreplica({
        id: `r${index}`,
        pool: "p",
        gauges: { [GAUGES.waiting]: 12 * n },
        histograms: { [HISTOGRAMS.ttft]: histogramOf(le, [n * 10, n, 0, 0]) },
      }),
    );
  let state = policy.init(0);
  for (const now of [0, 15, 30, 75, 90]) {
    const observation = deepFreeze(
      kobservation(now, [kpool({ name: "p", replicas: replicas(now / 15 + 1) })]),
    );
    const frozen = deepFreeze(state);
    const before = JSON.stringify(frozen);
    const first = policy.decide(observation, frozen);
    const second = policy.decide(observation, frozen);
    assert.deepEqual(first, second, `t=${now}: deterministic`);
    assert.equal(JSON.stringify(frozen), before, `t=${now}: state untouched`);
    assert.deepEqual(JSON.parse(JSON.stringify(first.state)) as unknown, first.state, `t=${now}: plain JSON`);
    assert.ok(first.decision.reasons.length > 0);
    state = first.state;
  }
  assert.ok(state.histograms.length > 0);
});

// ---------------------------------------------------------------------------------------------
// Metric collection from the observation

const waitingPolicy = (upstream_compat: boolean) =>
  createKthenaPolicy({ upstream_compat, metrics: [{ name: GAUGES.waiting, target_value: 10 }] }, [
    { name: "p", role: "mixed" },
  ]);

function decideOnce(policy: Policy<KthenaState>, observation: Observation) {
  return policy.decide(observation, policy.init(observation.now)).decision;
}

void test("an unscraped replica is missing (HPA), not a frozen pool; upstream_compat skips the pool", () => {
  const replicas = [
    ...uniform("p", 3, { [GAUGES.waiting]: 30 }),
    kreplica({ id: "blind", pool: "p", unscraped: true }),
  ];
  const observation = kobservation(0, [kpool({ name: "p", replicas })]);
  // 90 over 3, the missing one counted as 0 on a scale-up: 90/40 → 9, stable cap 4 + 4 = 8.
  assert.deepEqual(decideOnce(waitingPolicy(false), observation).targets, { p: { desired: 8 } });
  const compat = decideOnce(waitingPolicy(true), observation);
  assert.deepEqual(compat.targets, {});
  assert.match(compat.reasons.join("\n"), /blind could not be scraped/);
});

void test("a restarted or terminating replica freezes the pool only with upstream_compat", () => {
  for (const odd of [
    kreplica({ id: "odd", pool: "p", gauges: { [GAUGES.waiting]: 30 }, restarts: 1 }),
    kreplica({ id: "odd", pool: "p", phase: "draining", gauges: { [GAUGES.waiting]: 30 } }),
  ]) {
    const replicas = [...uniform("p", 3, { [GAUGES.waiting]: 30 }), odd];
    const observation = kobservation(0, [kpool({ name: "p", desired: 4, replicas })]);
    const correct = decideOnce(waitingPolicy(false), observation);
    assert.ok(correct.targets.p !== undefined, `${odd.phase}: scaled`);
    const compat = decideOnce(waitingPolicy(true), observation);
    assert.deepEqual(compat.targets, {});
    assert.match(compat.reasons.join("\n"), /pod metrics skipped/);
  }
});

void test("starting replicas are unready: counted as 0 on a scale-up", () => {
  const replicas = [
    ...uniform("p", 2, { [GAUGES.waiting]: 30 }),
    kreplica({ id: "s1", pool: "p", phase: "starting" }),
    kreplica({ id: "s2", pool: "p", phase: "starting", unscraped: true }),
  ];
  const observation = kobservation(0, [kpool({ name: "p", replicas })]);
  // 60 over 2 ready + 2 unready = 1.5 × 4 → 6 (upstream: 60 / (1 + 2) / 10 = 2 → ceil(2 · 3) = 6).
  assert.deepEqual(decideOnce(waitingPolicy(false), observation).targets, { p: { desired: 6 } });
  assert.deepEqual(decideOnce(waitingPolicy(true), observation).targets, { p: { desired: 6 } });
});

void test("external metrics come from observation.external (per pool first, then global)", () => {
  const policy = createKthenaPolicy(
    {
      metrics: [{ name: "rps", target_value: 5, source: "external" }],
      target: { kind: "homogeneous", min_replicas: 1, max_replicas: 20 },
    },
    [
      { name: "a", role: "mixed" },
      { name: "b", role: "mixed" },
    ],
  );
  const pools = [
    kpool({ name: "a", replicas: uniform("a", 2, {}) }),
    kpool({ name: "b", replicas: uniform("b", 2, {}) }),
  ];
  // a: 40/5 = 8 wanted, capped by the stable policy at 2 + 4; b: its own value 10/5 = 2 → hold.
  const decision = decideOnce(policy, kobservation(0, pools, { rps: 40, "b/rps": 10 }));
  assert.deepEqual(decision.targets, { a: { desired: 6 }, b: { desired: 2 } });
  assert.match(decision.reasons.join("\n"), /every pool independently/);
  // No external value at all: no signal, no action.
  const silent = decideOnce(policy, kobservation(0, pools, {}));
  assert.deepEqual(silent.targets, {});
  assert.match(silent.reasons.join("\n"), /no metric signal/);
});

void test("histogram metrics are p95 of the delta against a snapshot at least 60 s old", () => {
  const le = [0.1, 1, 5, 10, Infinity];
  const slow = histogramOf(le, [0, 0, 0, 100, 0]);
  const slowThenFast = histogramOf(le, [100, 0, 0, 100, 0]);
  // Lifetime p95 of `slow`: 10 − 5·5/100 = 9.75; the delta of the next 100 fast ones: 0.1 − 5·0.1/100.
  assert.equal(quantileInDelta(95, slow, undefined), 9.75);
  assert.ok(Math.abs(quantileInDelta(95, slowThenFast, slow)! - 0.095) < 1e-12);
  assert.equal(quantileInDelta(95, slow, slow), 0); // nothing new
  assert.equal(quantileInDelta(95, slow, slowThenFast), undefined); // went backwards
  assert.equal(quantileInDelta(95, histogramOf([1, Infinity], [0, 10]), undefined), 2); // +Inf → 2 × previous bound

  const policy = createKthenaPolicy(
    {
      metrics: [{ name: "ttft", pod_metric: HISTOGRAMS.ttft, target_value: 1 }],
      target: { kind: "homogeneous", min_replicas: 1, max_replicas: 10 },
    },
    [{ name: "p", role: "mixed" }],
  );
  const at = (now: number, histogram: typeof slow, restarts = 0) =>
    kobservation(now, [
      kpool({
        name: "p",
        desired: 1,
        replicas: [kreplica({ id: "r", pool: "p", restarts, histograms: { [HISTOGRAMS.ttft]: histogram } })],
      }),
    ]);
  let state = policy.init(0);
  let result = policy.decide(at(0, slow), state);
  assert.deepEqual(result.decision.targets, { p: { desired: 5 } }); // 9.75 → 10, capped at 1 + 4
  state = result.state;
  // 30 s later the only baseline is too fresh: still the lifetime p95 (9.5).
  result = policy.decide(at(30, slowThenFast), state);
  assert.deepEqual(result.decision.targets, { p: { desired: 5 } });
  state = result.state;
  // 60 s after the first snapshot: the delta holds only the fast requests → 1 replica.
  assert.deepEqual(policy.decide(at(60, slowThenFast), state).decision.targets, { p: { desired: 1 } });
  // The same counts after a restart are a new lifetime, not a delta.
  assert.deepEqual(policy.decide(at(60, slowThenFast, 1), state).decision.targets, { p: { desired: 5 } });
});

// ---------------------------------------------------------------------------------------------
// Heterogeneous and disaggregated modes

const heterogeneous = (
  upstream_compat: boolean,
  costs: [number | undefined, number | undefined],
): KthenaConfigInput => ({
  upstream_compat,
  metrics: [{ name: GAUGES.waiting, target_value: 10 }],
  target: {
    kind: "heterogeneous",
    params: [
      { pool: "A", min_replicas: 0, max_replicas: 4, ...(costs[0] === undefined ? {} : { cost: costs[0] }) },
      { pool: "B", min_replicas: 1, max_replicas: 8, ...(costs[1] === undefined ? {} : { cost: costs[1] }) },
    ],
  },
});

void test("heterogeneous: the total is recommended over all pools, then split by cost blocks (T=9 → A 4, B 5)", () => {
  const pools = [
    kpool({ name: "A", costPerReplicaHour_usd: 100 }),
    kpool({ name: "B", costPerReplicaHour_usd: 60, replicas: uniform("B", 5, { [GAUGES.waiting]: 18 }) }),
  ];
  const specs = [
    { name: "A", role: "mixed" as const },
    { name: "B", role: "mixed" as const },
  ];
  for (const [compat, costs] of [
    [false, [100, 60]],
    [true, [100, 60]],
    [false, [undefined, undefined]], // costs from the pools' capacity
  ] as const) {
    const policy = createKthenaPolicy(heterogeneous(compat, [...costs]), specs);
    const decision = decideOnce(policy, kobservation(0, pools));
    assert.deepEqual(
      decision.targets,
      { A: { desired: 4 }, B: { desired: 5 } },
      `compat ${compat} costs ${costs.join()}`,
    );
    assert.match(decision.reasons.join("\n"), /total 9 split by cost/);
  }
  assert.throws(
    () =>
      createKthenaPolicy(heterogeneous(false, [1, 2]), [
        { name: "A", role: "mixed" },
        { name: "C", role: "mixed" },
      ]),
    /heterogeneous params name A, B but the pools are A, C/,
  );
});

void test("heterogeneous external metrics: ratio names are replica-weighted, others summed", () => {
  assert.equal(isRatioMetric("gpu_utilization"), true);
  assert.equal(isRatioMetric("request_rate"), false);
  const samples = [
    { value: 90, replicas: 3 },
    { value: 30, replicas: 1 },
  ];
  assert.equal(aggregateExternal("gpu_utilization", samples), 75);
  assert.equal(aggregateExternal("queue_len", samples), 120);
  assert.equal(
    aggregateExternal("kv_usage", [
      { value: 1, replicas: 0 },
      { value: 0, replicas: 0 },
    ]),
    0.5,
  );
  assert.equal(aggregateExternal("x", []), undefined);
});

const disaggregated = (prefillMin = 1): KthenaConfigInput => ({
  target: {
    kind: "disaggregated",
    roles: {
      prefill: {
        min_replicas: prefillMin,
        max_replicas: 3,
        metrics: [{ name: GAUGES.pendingPrefillTokens, target_value: 1000 }],
      },
      decode: {
        min_replicas: 1,
        max_replicas: 20,
        metrics: [{ name: GAUGES.kvCacheUsage, target_value: 0.5 }],
      },
    },
    ratio: { numerator_role: "prefill", denominator_role: "decode", min_ratio: 0.25, max_ratio: 1 },
  },
});
const pdPools = [
  { name: "pf", role: "prefill" as const },
  { name: "dc", role: "decode" as const },
];

void test("disaggregated: roles scale on their own metrics, then the ratio repair (P 1, D 20 → P 3, D 12)", () => {
  const policy = createKthenaPolicy(disaggregated(), pdPools);
  const observation = kobservation(0, [
    kpool({
      name: "pf",
      role: "prefill",
      replicas: uniform("pf", 2, { [GAUGES.pendingPrefillTokens]: 500 }),
    }),
    kpool({ name: "dc", role: "decode", replicas: uniform("dc", 10, { [GAUGES.kvCacheUsage]: 1 }) }),
  ]);
  const decision = decideOnce(policy, observation);
  assert.deepEqual(decision.targets, { pf: { desired: 3 }, dc: { desired: 12 } });
  assert.match(
    decision.reasons.join("\n"),
    /ratio prefill\/decode in \[0.25, 1\]: 1\/20 → 3\/12 \(adjusted\)/,
  );
});

void test("disaggregated: a role without signal stops every role; a fixed role is pinned", () => {
  const policy = createKthenaPolicy(disaggregated(), pdPools);
  const blind = kobservation(0, [
    kpool({ name: "pf", role: "prefill", replicas: [kreplica({ id: "x", pool: "pf", unscraped: true })] }),
    kpool({ name: "dc", role: "decode", replicas: uniform("dc", 10, { [GAUGES.kvCacheUsage]: 1 }) }),
  ]);
  const decision = decideOnce(policy, blind);
  assert.deepEqual(decision.targets, {});
  assert.match(decision.reasons.join("\n"), /no role is scaled/);

  const fixed = createKthenaPolicy(
    {
      target: {
        kind: "disaggregated",
        roles: {
          prefill: { min_replicas: 2, max_replicas: 2 },
          decode: {
            min_replicas: 1,
            max_replicas: 20,
            metrics: [{ name: GAUGES.kvCacheUsage, target_value: 0.5 }],
          },
        },
        ratio: { numerator_role: "prefill", denominator_role: "decode", min_ratio: 0.25, max_ratio: 1 },
      },
    },
    pdPools,
  );
  const pinned = decideOnce(fixed, {
    ...blind,
    pools: [kpool({ name: "pf", role: "prefill", replicas: [] }), blind.pools[1]!],
  });
  // decode wants 20 (allowed: +100 % Or +4), but 2 prefill allow at most 2/0.25 = 8 decode.
  assert.deepEqual(pinned.targets, { pf: { desired: 2 }, dc: { desired: 8 } });
});
