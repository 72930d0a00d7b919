import assert from "node:assert/strict";
import { test } from "node:test";

import { UsageError } from "../../src/errors.ts";
import {
  createHpaPolicy,
  hpaConfigSchema,
  type HpaConfig,
  type HpaState,
  normalizeLegacy,
  stabilizeRecommendation,
} from "../../src/policy/hpa.ts";
import { recWindow, recWindowAppend } from "../../src/policy/primitives/window-best.ts";
import type { Observation, Policy, PoolRole, PoolView, ReplicaView } from "../../src/policy/types.ts";
import { GAUGES } from "../../src/policy/types.ts";
import { deepFreeze, observation, pool, readyReplicas, replica } from "./k8s-helpers.ts";

const pods10 = { metrics: [{ type: "pods", metric: GAUGES.concurrent, target_average_value: 10 }] };

function hpa(
  raw: Record<string, unknown> = pods10,
  pools: readonly { name: string; role: PoolRole }[] = [{ name: "decode", role: "decode" }],
) {
  const config: HpaConfig = hpaConfigSchema.parse(raw);
  return createHpaPolicy(config, pools);
}

/** One decide call from a fresh or given state. */
function decide(policy: Policy<HpaState>, obs: Observation, state?: HpaState) {
  return policy.decide(obs, state ?? policy.init(obs.now));
}

function desiredOf(
  result: { decision: { targets: Readonly<Record<string, { desired: number }>> } },
  name = "decode",
) {
  const target = result.decision.targets[name];
  assert.ok(target !== undefined, `no target for ${name}`);
  return target.desired;
}

/** `count` ready replicas each reporting `value`. */
function uniform(count: number, value: number, gauge: string = GAUGES.concurrent): ReplicaView[] {
  return readyReplicas(
    Array.from({ length: count }, () => value),
    gauge,
  );
}

void test("defaults: 15 s tick, tolerance 0.1, GPU utilization at 80 %, default behavior", () => {
  const config = hpaConfigSchema.parse({});
  assert.equal(config.interval_s, 15);
  assert.equal(config.tolerance, 0.1);
  assert.deepEqual(config.metrics, [
    { type: "resource", metric: GAUGES.gpuUtilization, target_utilization: 80 },
  ]);
  assert.equal(config.behavior?.scale_up.stabilization_window_s, 0);
  assert.equal(config.behavior?.scale_down.stabilization_window_s, 300);
  assert.deepEqual(config.behavior?.scale_up.policies, [
    { type: "pods", value: 4, period_s: 15 },
    { type: "percent", value: 100, period_s: 15 },
  ]);
  assert.deepEqual(config.behavior?.scale_down.policies, [{ type: "percent", value: 100, period_s: 15 }]);
  assert.equal(config.behavior?.scale_up.select_policy, "max");
  assert.equal(hpa().interval_s, 15);
  assert.equal(hpa().name, "hpa");
});

void test("config errors name the key", () => {
  const result = hpaConfigSchema.safeParse({ tolerance: -1, metrics: [{ type: "external" }], extra: 1 });
  assert.ok(!result.success);
  const paths = result.error.issues.map((issue) => issue.path.join("."));
  assert.ok(paths.includes("tolerance"));
  assert.ok(paths.includes("metrics.0.metric"));
  assert.ok(paths.includes("metrics.0.target"));
});

void test("H1: Pods AverageValue, 4 ready pods [12, 14, 10, 12] at target 10 → 5", () => {
  const result = decide(hpa(), observation(0, [pool(readyReplicas([12, 14, 10, 12]))]));
  assert.equal(desiredOf(result), 5);
  assert.match(
    result.decision.reasons[0] ?? "",
    /^decode: pods concurrent_requests mean 12 \/ 10: ratio 1\.20/,
  );
});

void test("H2: the same pods plus one Pending (starting) replica at current 5 → 48/50 inside the band → 5", () => {
  const replicas = [...readyReplicas([12, 14, 10, 12]), replica("s", "starting", { [GAUGES.concurrent]: 0 })];
  const result = decide(hpa(), observation(0, [pool(replicas)]));
  assert.equal(desiredOf(result), 5);
  assert.match(result.decision.reasons[0] ?? "", /adjusted 0\.96/);
});

void test("H3: 3 pods report [4, 4, 4] and 1 is missing → missing at target → 0.55 → 3", () => {
  const replicas = [...readyReplicas([4, 4, 4]), replica("m", "ready", undefined)];
  const result = decide(hpa(), observation(0, [pool(replicas)]));
  assert.equal(desiredOf(result), 3);
  assert.match(result.decision.reasons[0] ?? "", /ratio 0\.40.*adjusted 0\.55/);
});

void test("H4: current 10 wanting 30 under max 50 is capped by the default scaleUp policies at 20", () => {
  const result = decide(hpa(), observation(0, [pool(uniform(10, 30), { max: 50 })]));
  assert.equal(desiredOf(result), 20);
  assert.match(result.decision.reasons[0] ?? "", /proposal 30, stabilized 30 \(scaleUp policy cap 20\) → 20/);
});

void test("H5: current 10 stabilized at 2 with the default scaleDown (floor 0), min 1 → 2", () => {
  const policy = hpa({ ...pods10, behavior: { scale_down: { stabilization_window_s: 0 } } });
  const result = decide(policy, observation(0, [pool(uniform(10, 2))]));
  assert.equal(desiredOf(result), 2);
});

void test("H6: recommendations [8, 6, 5] in the 300 s down window, current 8, new 4 → 8", () => {
  let down = recWindow("max", 300);
  down = recWindowAppend(down, 0, 8);
  down = recWindowAppend(down, 15, 6);
  down = recWindowAppend(down, 30, 5);
  const stabilized = stabilizeRecommendation({
    current: 8,
    desired: 4,
    now: 45,
    up: recWindow("min", 0),
    down,
  });
  assert.equal(stabilized.replicas, 8);
});

void test("H6 over time: the down window holds 8 until the high recommendations age out", () => {
  const policy = hpa();
  let state = policy.init(0);
  const tick = (now: number, value: number) => {
    const result = policy.decide(observation(now, [pool(uniform(8, value))]), state);
    state = result.state;
    return desiredOf(result);
  };
  assert.equal(tick(0, 10), 8); // ratio 1: recommendation 8
  assert.equal(tick(15, 7.5), 8); // 6
  assert.equal(tick(30, 6.25), 8); // 5
  assert.equal(tick(45, 5), 8); // 4: H6
  // At 301 s the t=0 recommendation (8) has left the window; the max of the rest is 6.
  assert.equal(tick(301, 5), 6);
  // At 316 s the 6 is gone too: 5.
  assert.equal(tick(316, 5), 5);
});

void test("H7: the legacy path (behavior null) caps 3 → 20 at max(2·3, 4) = 6", () => {
  assert.equal(normalizeLegacy(3, 20, 1, 50), 6);
  const policy = hpa({ ...pods10, behavior: null });
  const result = decide(policy, observation(0, [pool(readyReplicas([70, 70, 60]), { max: 50 })]));
  assert.equal(desiredOf(result), 6);
  assert.match(result.decision.reasons[0] ?? "", /legacy cap 6/);
});

void test("the legacy path stabilizes downward over its downscale window", () => {
  const policy = hpa({ ...pods10, behavior: null, downscale_stabilization_s: 60 });
  let state = policy.init(0);
  const tick = (now: number, values: number[]) => {
    const result = policy.decide(observation(now, [pool(readyReplicas(values))]), state);
    state = result.state;
    return desiredOf(result);
  };
  assert.equal(tick(0, [10, 10, 10, 10]), 4);
  assert.equal(tick(15, [2, 2, 2, 2]), 4);
  assert.equal(tick(61, [2, 2, 2, 2]), 1);
});

void test("tolerance holds inside the band; per-direction tolerances override it", () => {
  assert.equal(desiredOf(decide(hpa(), observation(0, [pool(uniform(10, 10.5))]))), 10);
  const eager = hpa({ ...pods10, behavior: { scale_up: { tolerance: 0.02 } } });
  assert.equal(desiredOf(decide(eager, observation(0, [pool(uniform(10, 10.5))]))), 11);
  // Scale-down keeps the symmetric 10 %.
  assert.equal(desiredOf(decide(eager, observation(0, [pool(uniform(10, 9.5))]))), 10);
});

void test("behavior rate limits apply across consecutive ticks through the event log", () => {
  const policy = hpa();
  let state = policy.init(0);
  const tick = (now: number, current: number) => {
    // 10 ready replicas under heavy load plus whatever was requested and is still starting.
    const starting = Array.from({ length: current - 10 }, (_, i) => replica(`s${i}`, "starting", undefined));
    const result = policy.decide(observation(now, [pool([...uniform(10, 100), ...starting])]), state);
    state = result.state;
    return { desired: desiredOf(result), reason: result.decision.reasons[0] ?? "" };
  };
  assert.equal(tick(0, 10).desired, 20);
  const held = tick(5, 20);
  assert.equal(held.desired, 20, "the period's budget (start 10 → 20) is used up");
  assert.match(held.reason, /scaleUp policy cap 20/);
  assert.equal(tick(15, 20).desired, 40, "the t=0 event left the 15 s period");
  // Events older than the longest policy period (15 s) are recycled.
  assert.deepEqual(state.pools["decode"]?.upEvents.events, [{ t: 15, change: 20 }]);
});

void test("scale-down is rate limited too: Pods 1 per 60 s removes one replica per minute", () => {
  const policy = hpa({
    ...pods10,
    behavior: {
      scale_down: { stabilization_window_s: 0, policies: [{ type: "pods", value: 1, period_s: 60 }] },
    },
  });
  let state = policy.init(0);
  let current = 6;
  const out: number[] = [];
  for (let now = 0; now <= 120; now += 15) {
    const result = policy.decide(observation(now, [pool(uniform(current, 1))]), state);
    state = result.state;
    current = desiredOf(result);
    out.push(current);
  }
  assert.deepEqual(out, [5, 5, 5, 5, 4, 4, 4, 4, 3]);
});

void test("a missing metric refuses scale-down but allows scale-up", () => {
  const raw = { metrics: [...pods10.metrics, { type: "external", metric: "queue_depth", target: 5 }] };
  const down = decide(hpa(raw), observation(0, [pool(uniform(4, 2))]));
  assert.equal(desiredOf(down), 4);
  assert.match(down.decision.reasons[0] ?? "", /refused while a metric is invalid/);
  assert.match(down.decision.reasons[0] ?? "", /invalid: external queue_depth: not observed/);
  const up = decide(hpa(raw), observation(0, [pool(uniform(4, 15))]));
  assert.equal(desiredOf(up), 6);
  // With the external metric present the same scale-down goes through.
  const both = decide(hpa(raw), observation(0, [pool(uniform(4, 2))], { external: { queue_depth: 0 } }));
  assert.equal(desiredOf(both), 1);
});

void test("no valid metric holds the current count", () => {
  const replicas = [replica("a", "ready", undefined), replica("b", "starting", undefined)];
  const result = decide(hpa(), observation(0, [pool(replicas)]));
  assert.equal(desiredOf(result), 2);
  assert.match(result.decision.reasons[0] ?? "", /no valid metric.*1 starting, 1 unscraped/);
});

void test("draining replicas are ignored", () => {
  const replicas = [
    ...readyReplicas([12, 14, 10, 12]),
    replica("d", "draining", { [GAUGES.concurrent]: 500 }),
  ];
  assert.equal(desiredOf(decide(hpa(), observation(0, [pool(replicas)]))), 5);
});

void test("Resource utilization: missing replicas count at max(100 %, target) on a scale-down", () => {
  const policy = hpa({ metrics: [{ type: "resource", target_utilization: 80 }] });
  const replicas = [...uniform(3, 40, GAUGES.gpuUtilization), replica("m", "ready", undefined)];
  // ratio 0.5; missing at 100 → (120 + 100) / 4 / 80 = 0.6875 → ceil(220 / 80) = 3.
  const result = decide(policy, observation(0, [pool(replicas)]));
  assert.equal(desiredOf(result), 3);
  assert.match(result.decision.reasons[0] ?? "", /1 missing at 100/);
});

void test("guards: at 0 with min ≥ 1 scaling is disabled; outside [min, max] snaps to the bound", () => {
  const disabled = decide(hpa(), observation(0, [pool([], { desired: 0, min: 0 })]));
  assert.equal(desiredOf(disabled), 0);
  assert.match(disabled.decision.reasons[0] ?? "", /scaling disabled/);
  assert.equal(desiredOf(decide(hpa(), observation(0, [pool(uniform(6, 10), { max: 4 })]))), 4);
  assert.equal(desiredOf(decide(hpa(), observation(0, [pool(uniform(2, 10), { min: 3 })]))), 3);
});

void test("External metrics with min 0 scale to zero and back from zero", () => {
  const policy = hpa({
    metrics: [{ type: "external", metric: "queue_depth", target_type: "average_value", target: 10 }],
    behavior: { scale_down: { stabilization_window_s: 0 } },
  });
  let state = policy.init(0);
  const down = policy.decide(
    observation(0, [pool(uniform(2, 0), { min: 0 })], { external: { queue_depth: 0 } }),
    state,
  );
  state = down.state;
  assert.equal(desiredOf(down), 0);
  const up = policy.decide(observation(15, [pool([], { min: 0 })], { external: { queue_depth: 35 } }), state);
  assert.equal(desiredOf(up), 4);
  // External Value: ratio × ready replicas, and ceil(ratio) from zero.
  const value = hpa({ metrics: [{ type: "external", metric: "load", target_type: "value", target: 100 }] });
  assert.equal(
    desiredOf(decide(value, observation(0, [pool(uniform(4, 0))], { external: { load: 150 } }))),
    6,
  );
  assert.equal(
    desiredOf(decide(value, observation(0, [pool(uniform(4, 0))], { external: { load: 105 } }))),
    4,
  );
});

void test("every pool is scaled independently, with per-pool overrides", () => {
  const pools = [
    { name: "prefill", role: "prefill" as const },
    { name: "decode", role: "decode" as const },
  ];
  const policy = hpa(
    {
      ...pods10,
      pools: { prefill: { metrics: [{ type: "pods", metric: GAUGES.waiting, target_average_value: 2 }] } },
    },
    pools,
  );
  const prefill: PoolView = pool(uniform(2, 4, GAUGES.waiting), { name: "prefill", role: "prefill" });
  const decode = pool(readyReplicas([12, 14, 10, 12]));
  const result = decide(policy, observation(0, [prefill, decode]));
  assert.equal(desiredOf(result, "prefill"), 4);
  assert.equal(desiredOf(result, "decode"), 5);
  assert.equal(result.decision.reasons.length, 2);
  assert.deepEqual(Object.keys(result.state.pools).sort(), ["decode", "prefill"]);
  assert.throws(() => hpa({ pools: { nope: {} } }), UsageError);
});

void test("decide is pure: it never mutates its inputs and repeats itself exactly", () => {
  const policy = hpa();
  const first = policy.decide(observation(0, [pool(uniform(4, 30))]), policy.init(0));
  const obs = deepFreeze(
    observation(15, [pool(readyReplicas([12, 14, 10, 12, 1, 1, 1, 1]), { desired: 8 })]),
  );
  const state = deepFreeze(first.state);
  const before = JSON.stringify(state);
  const a = policy.decide(obs, state);
  const b = policy.decide(obs, state);
  assert.deepEqual(a, b);
  assert.equal(JSON.stringify(state), before);
  // State is plain JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(a.state)), a.state);
});
