import assert from "node:assert/strict";
import { test } from "node:test";

import { createThresholdPolicy, thresholdConfigSchema } from "../../src/policy/threshold.ts";
import type { ThresholdState } from "../../src/policy/threshold.ts";
import type { Decision, Policy, PoolView } from "../../src/policy/types.ts";
import { deepFreeze, observation, pool, replica } from "./everai-helpers.ts";

const PD = [
  { name: "prefill", role: "prefill" },
  { name: "decode", role: "decode" },
] as const;

function threshold(overrides: Record<string, unknown> = {}): Policy<ThresholdState> {
  return createThresholdPolicy(thresholdConfigSchema.parse(overrides), PD);
}

/** A prefill pool whose ready replicas hold these pending prompt tokens. */
function prefillPool(pending: readonly number[], extra: Partial<Parameters<typeof pool>[0]> = {}): PoolView {
  return pool({
    name: "prefill",
    role: "prefill",
    replicas: pending.map((tokens, i) => replica({ id: `p${i}`, pool: "prefill", pendingPrefill: tokens })),
    ...extra,
  });
}

/** A decode pool whose ready replicas have these KV-cache use fractions (created at 0, 10, 20, …). */
function decodePool(kv: readonly number[], extra: Partial<Parameters<typeof pool>[0]> = {}): PoolView {
  return pool({
    name: "decode",
    role: "decode",
    replicas: kv.map((use, i) => replica({ id: `d${i}`, pool: "decode", kv: use, createdAt_s: 10 * i })),
    ...extra,
  });
}

void test("prefill load = Σ pending tokens / (ready × 10,000): above 0.8 adds a replica", () => {
  const policy = threshold();
  const { decision } = policy.decide(
    observation(0, [prefillPool([9_000, 9_000]), decodePool([0.5])]),
    policy.init(0),
  );
  assert.deepEqual(decision.targets, { prefill: { desired: 3 } });
  assert.match(
    decision.reasons.join("\n"),
    /prefill 0\.900 \(18000 pending tokens \/ \(2 × 10000\)\) > 0\.8/,
  );
  assert.match(decision.reasons.join("\n"), /decode: load decode 0\.500 .* within \[0\.3, 0\.8\]/);
});

void test("decode load = mean KV use: below 0.3 drains the least loaded ready replica, never below min", () => {
  const policy = threshold();
  const views = [prefillPool([5_000]), decodePool([0.2, 0.05, 0.1])];
  const { decision } = policy.decide(observation(0, views), policy.init(0));
  assert.deepEqual(decision.targets, { decode: { desired: 2, victims: ["d1"] } });

  const atMin = policy.decide(observation(0, [decodePool([0.1, 0.1], { min: 2 })]), policy.init(0));
  assert.deepEqual(atMin.decision.targets, {});
  assert.match(atMin.decision.reasons.join("\n"), /2 ready ≤ min 2/);
});

void test("cooldown: after an action the pool waits cooldown_s; other pools are not held by it", () => {
  const policy = threshold();
  let state = policy.init(0);
  const step = (now: number, views: readonly PoolView[]): Decision => {
    const result = policy.decide(observation(now, views), state);
    state = result.state;
    return result.decision;
  };
  const hot = prefillPool([10_000, 10_000]);
  assert.deepEqual(step(0, [hot, decodePool([0.5])]).targets, { prefill: { desired: 3 } });
  assert.deepEqual(state, { lastScaleAt: { prefill: 0 } });
  const starting = replica({ id: "p2", pool: "prefill", phase: "starting" });
  const growing = prefillPool([10_000, 10_000], { replicas: [...hot.replicas, starting] });
  const held = step(2, [growing, decodePool([0.9])]);
  assert.deepEqual(held.targets, { decode: { desired: 2 } }, "decode acts while prefill cools down");
  assert.match(held.reasons.join("\n"), /prefill: cooldown \(2\.0s of 5s/);
  assert.deepEqual(step(4.9, [growing, decodePool([0.9, 0.9], { desired: 2 })]).targets, {});
  // 5 s after the last action the still-hot pool grows again (the seed does not wait for starting replicas).
  assert.deepEqual(step(5, [growing, decodePool([0.5, 0.5])]).targets, { prefill: { desired: 4 } });
  assert.deepEqual(state, { lastScaleAt: { prefill: 5, decode: 2 } });
});

void test("mixed pools take the larger of the prefill and decode signals", () => {
  const policy = createThresholdPolicy(thresholdConfigSchema.parse({}), [{ name: "mixed", role: "mixed" }]);
  const mixed = (kv: number, pending: number): PoolView =>
    pool({
      replicas: [
        replica({ id: "m0", kv, pendingPrefill: pending }),
        replica({ id: "m1", kv, pendingPrefill: pending, createdAt_s: 10 }),
      ],
    });
  assert.deepEqual(policy.decide(observation(0, [mixed(0.9, 0)]), policy.init(0)).decision.targets, {
    mixed: { desired: 3 },
  });
  assert.deepEqual(policy.decide(observation(0, [mixed(0.1, 9_000)]), policy.init(0)).decision.targets, {
    mixed: { desired: 3 },
  });
  // Equal loads: the newer replica goes first.
  assert.deepEqual(policy.decide(observation(0, [mixed(0.1, 1_000)]), policy.init(0)).decision.targets, {
    mixed: { desired: 1, victims: ["m1"] },
  });
});

void test("bounds, step, unscraped replicas and empty pools", () => {
  const atMax = threshold().decide(observation(0, [decodePool([0.95, 0.95], { max: 2 })]), {
    lastScaleAt: {},
  });
  assert.deepEqual(atMax.decision.targets, {});
  assert.match(atMax.decision.reasons.join("\n"), /but at max 2/);

  const stepped = threshold({ step: 3 }).decide(observation(0, [decodePool([0.95], { max: 3 })]), {
    lastScaleAt: {},
  });
  assert.deepEqual(stepped.decision.targets, { decode: { desired: 3 } }, "step clamped to max");

  // The unscraped replica is neither in the signal nor a victim.
  const blind = decodePool([0.1, 0.1], {
    replicas: [
      replica({ id: "blind", pool: "decode", unscraped: true }),
      replica({ id: "d0", pool: "decode", kv: 0.1 }),
      replica({ id: "d1", pool: "decode", kv: 0.05 }),
    ],
  });
  const drained = threshold({ step: 5 }).decide(observation(0, [blind]), { lastScaleAt: {} });
  assert.deepEqual(drained.decision.targets, { decode: { desired: 1, victims: ["d1", "d0"] } });

  const noSignal = threshold().decide(
    observation(0, [decodePool([], { replicas: [replica({ id: "x", pool: "decode", unscraped: true })] })]),
    { lastScaleAt: {} },
  );
  assert.deepEqual(noSignal.decision.targets, {});
  assert.match(noSignal.decision.reasons.join("\n"), /no ready replica with metrics/);

  const empty = threshold().decide(observation(0, [prefillPool([])], { noReplica: 4 }), { lastScaleAt: {} });
  assert.deepEqual(empty.decision.targets, { prefill: { desired: 1 } });
  const idleEmpty = threshold().decide(observation(0, [prefillPool([])]), { lastScaleAt: {} });
  assert.deepEqual(idleEmpty.decision.targets, {});
});

void test("config: seed defaults, strict keys, thresholds ordered", () => {
  assert.deepEqual(thresholdConfigSchema.parse({}), {
    scale_up_threshold: 0.8,
    scale_down_threshold: 0.3,
    step: 1,
    cooldown_s: 5,
    prefill_tokens_per_replica: 10_000,
    interval_s: 2,
  });
  assert.equal(threshold().name, "threshold");
  assert.equal(threshold().interval_s, 2);
  assert.throws(() => thresholdConfigSchema.parse({ cooldown: 5 }), /cooldown/);
  assert.throws(
    () => thresholdConfigSchema.parse({ scale_up_threshold: 0.3, scale_down_threshold: 0.5 }),
    /scale_down_threshold must be below scale_up_threshold/,
  );
});

void test("decide is pure and deterministic", () => {
  const policy = threshold();
  const obs = deepFreeze(observation(7, [prefillPool([9_500, 9_500]), decodePool([0.1, 0.2, 0.1])]));
  const state = deepFreeze(policy.init(0));
  const one = policy.decide(obs, state);
  assert.deepEqual(policy.decide(obs, state), one);
  assert.deepEqual(state, { lastScaleAt: {} });
  assert.deepEqual(JSON.parse(JSON.stringify(one.state)), one.state);
  assert.deepEqual(one.decision.targets, {
    prefill: { desired: 3 },
    decode: { desired: 2, victims: ["d2"] },
  });
});
