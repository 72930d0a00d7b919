import assert from "node:assert/strict";
import { test } from "node:test";

import { UsageError } from "../../src/errors.ts";
import {
  activatorCount,
  createKpaPolicy,
  handleScaleToZero,
  knativeDeciderSpec,
  knativeScale,
  kpaConfigSchema,
  type KpaState,
  nextActivity,
  panicWindowSeconds,
  resolveKpaPoolConfig,
} from "../../src/policy/kpa.ts";
import type { Policy, PoolRole, ReplicaView } from "../../src/policy/types.ts";
import { GAUGES } from "../../src/policy/types.ts";
import { deepFreeze, observation, pool, readyReplicas, replica } from "./k8s-helpers.ts";

const defaults = resolveKpaPoolConfig(kpaConfigSchema.parse({}), "decode");
const spec = knativeDeciderSpec(defaults);
const calm = { panicTime: null, maxPanicPods: 0 };

function kpa(raw: Record<string, unknown> = {}, role: PoolRole = "decode") {
  return createKpaPolicy(kpaConfigSchema.parse(raw), [{ name: "decode", role }]);
}

/** `count` ready replicas sharing `total` concurrent requests evenly. */
function sharing(count: number, total: number): ReplicaView[] {
  return readyReplicas(Array.from({ length: count }, () => (count === 0 ? 0 : total / count)));
}

interface Tick {
  readonly t: number;
  readonly desired: number;
  readonly reason: string;
  readonly state: KpaState;
}

/**
 * Runs the policy every `step_s` over `[0, until_s]` against a pool whose replicas become ready the
 * moment they are asked for and share `load(t)` concurrent requests; `queue(t)` requests wait at the
 * gateway.
 */
function run(
  policy: Policy<KpaState>,
  options: {
    readonly start: number;
    readonly until_s: number;
    readonly load: (t: number) => number;
    readonly queue?: (t: number) => number;
    readonly min?: number;
    readonly role?: PoolRole;
    readonly step_s?: number;
  },
): Tick[] {
  let state = policy.init(0);
  let current = options.start;
  const ticks: Tick[] = [];
  for (let t = 0; t <= options.until_s; t += options.step_s ?? 2) {
    const view = pool(sharing(current, options.load(t)), {
      min: options.min ?? 1,
      role: options.role ?? "decode",
    });
    const queued = options.queue?.(t) ?? 0;
    const obs = observation(t, [view], {
      queue: current === 0 ? { noReplica: queued } : { dueBusy: queued },
    });
    const result = policy.decide(obs, state);
    state = result.state;
    const target = result.decision.targets["decode"];
    assert.ok(target !== undefined);
    current = target.desired;
    ticks.push({ t, desired: current, reason: result.decision.reasons[0] ?? "", state });
  }
  return ticks;
}

const at = (ticks: readonly Tick[], t: number): Tick => {
  const tick = ticks.find((entry) => entry.t === t);
  assert.ok(tick !== undefined, `no tick at ${t}`);
  return tick;
};

void test("defaults follow config-autoscaler: target 100 × 0.7 = 70, 60 s stable and 6 s panic windows", () => {
  const config = kpaConfigSchema.parse({});
  assert.equal(config.interval_s, 2);
  assert.equal(spec.target, 70);
  assert.equal(spec.total, 100);
  assert.equal(spec.panicThreshold, 2);
  assert.equal(spec.maxScaleUpRate, 1000);
  assert.equal(spec.maxScaleDownRate, 2);
  assert.equal(panicWindowSeconds(defaults), 6);
  assert.equal(config.target_burst_capacity, 211);
  assert.equal(config.scale_to_zero_grace_period_s, 30);
  assert.equal(kpa().interval_s, 2);
  assert.equal(kpa().name, "kpa");
  // Targets: containerConcurrency, the annotation (capped at containerConcurrency), and rps.
  const cc = (raw: Record<string, unknown>) =>
    knativeDeciderSpec(resolveKpaPoolConfig(kpaConfigSchema.parse(raw), "x"));
  assert.equal(cc({ container_concurrency: 10 }).target, 7);
  assert.equal(cc({ container_concurrency: 10, target: 50 }).total, 10);
  assert.equal(cc({ target: 50 }).total, 50);
  assert.equal(cc({ metric: "rps" }).target, 140);
  assert.ok(!kpaConfigSchema.safeParse({ target_burst_capacity: -2 }).success);
  assert.ok(!kpaConfigSchema.safeParse({ panic_threshold_percentage: 100 }).success);
});

void test("K1: target 70, 2 ready, stable 100, panic 400 → panic, 6; EBC −411; 5 activators", () => {
  const result = knativeScale(spec, { now: 10, readyReplicas: 2, stable: 100, panic: 400 }, calm);
  assert.equal(result.dspc, 2);
  assert.equal(result.dppc, 6);
  assert.deepEqual([result.maxDown, result.maxUp], [1, 2000]);
  assert.equal(result.overThreshold, true);
  assert.equal(result.panicking, true);
  assert.equal(result.desired, 6);
  assert.deepEqual(result.state, { panicTime: 10, maxPanicPods: 6 });
  assert.equal(result.excessBurstCapacity, -411);
  assert.equal(activatorCount(2, spec.total, spec.targetBurstCapacity, 100), 5);
});

void test("K2: in panic with maxPanicPods 6, ready 6, stable 150, panic 100, last over-threshold < 60 s ago → 6", () => {
  const inPanic = { panicTime: 70, maxPanicPods: 6 };
  const result = knativeScale(spec, { now: 100, readyReplicas: 6, stable: 150, panic: 100 }, inPanic);
  assert.equal(result.overThreshold, false);
  assert.equal(result.panicking, true);
  assert.equal(result.desired, 6);
  // A stable window after the last over-threshold tick, panic ends and the stable count (3) applies.
  const after = knativeScale(spec, { now: 131, readyReplicas: 6, stable: 150, panic: 100 }, inPanic);
  assert.equal(after.panicking, false);
  assert.equal(after.desired, 3);
  assert.deepEqual(after.state, calm);
});

void test("K3: not in panic, ready 6, stable 60 → dspc 1, bounded by maxDown 3 → 3", () => {
  const result = knativeScale(spec, { now: 0, readyReplicas: 6, stable: 60, panic: 60 }, calm);
  assert.equal(result.dspc, 1);
  assert.equal(result.maxDown, 3);
  assert.equal(result.desired, 3);
});

void test("activation scale is the least non-zero scale; burst capacity 0 and −1 are fixed", () => {
  const withActivation = { ...spec, activationScale: 3 };
  assert.equal(
    knativeScale(withActivation, { now: 0, readyReplicas: 0, stable: 10, panic: 10 }, calm).desired,
    3,
  );
  assert.equal(
    knativeScale(withActivation, { now: 0, readyReplicas: 1, stable: 0, panic: 0 }, calm).desired,
    0,
  );
  assert.equal(
    knativeScale(
      { ...spec, targetBurstCapacity: 0 },
      { now: 0, readyReplicas: 2, stable: 0, panic: 400 },
      calm,
    ).excessBurstCapacity,
    0,
  );
  assert.equal(
    knativeScale(
      { ...spec, targetBurstCapacity: -1 },
      { now: 0, readyReplicas: 2, stable: 0, panic: 0 },
      calm,
    ).excessBurstCapacity,
    -1,
  );
  assert.equal(activatorCount(50, 100, 0, 100), 2);
  assert.equal(activatorCount(50, 100, -1, 100), 50);
});

void test("K1 through decide: 2 replicas that cannot grow see a burst: panic to 6, EBC −411, 5 activators", () => {
  // 2 ready replicas at 50 each (the startup panic at 2 ends after 60 s), then 400 from t = 69 s on.
  const policy = kpa();
  let state = policy.init(0);
  const reasons: Record<number, string> = {};
  const desired: Record<number, number> = {};
  for (let t = 0; t <= 74; t += 2) {
    const result = policy.decide(observation(t, [pool(sharing(2, t < 69 ? 100 : 400))]), state);
    state = result.state;
    reasons[t] = result.decision.reasons[0] ?? "";
    desired[t] = result.decision.targets["decode"]!.desired;
  }
  assert.equal(desired[68], 2);
  assert.match(reasons[68] ?? "", /stable 100 panic 100/);
  assert.doesNotMatch(reasons[68] ?? "", /panic \(/);
  // t = 70: the panic window holds 4 × 100 + 2 × 400 → 200 → 3 pods, 1.5× ready: no panic, stable rules.
  assert.equal(desired[70], 2);
  // t = 72: 300 → 5 pods ≥ 2 × 2 ready: panic.
  assert.equal(desired[72], 5);
  assert.match(reasons[72] ?? "", /panic \(2\.50× ready, no decrease\) → 5/);
  // t = 74: stable 130, panic 400 → dspc 2, dppc 6 → 6 with EBC ⌊2·100 − 211 − 400⌋ = −411.
  assert.equal(desired[74], 6);
  assert.match(reasons[74] ?? "", /stable 130 panic 400/);
  assert.match(reasons[74] ?? "", /ebc -411 \(proxy, 5 activators\)/);
});

void test("startup in panic holds the current scale for a stable window, then steps down by half", () => {
  const ticks = run(kpa(), { start: 4, until_s: 70, load: () => 0 });
  for (const tick of ticks.filter((entry) => entry.t <= 60)) assert.equal(tick.desired, 4, `at ${tick.t}`);
  assert.equal(at(ticks, 62).desired, 2);
  assert.equal(at(ticks, 64).desired, 1);
  assert.equal(at(ticks, 70).desired, 1, "min 1 keeps the last replica");
  // One ready replica does not start in panic.
  assert.equal(
    run(kpa(), { start: 1, until_s: 0, load: () => 0 })[0]?.state.pools["decode"]?.decider.panicTime,
    null,
  );
});

void test("a panic never decreases and ends a stable window after the last over-threshold tick", () => {
  const ticks = run(kpa(), { start: 1, until_s: 200, load: (t) => (t >= 20 && t < 30 ? 700 : 35) });
  const panicking = ticks.filter((tick) => tick.state.pools["decode"]?.decider.panicTime !== null);
  assert.ok(panicking.length > 0);
  for (let i = 1; i < panicking.length; i++) assert.ok(panicking[i]!.desired >= panicking[i - 1]!.desired);
  const peak = Math.max(...ticks.map((tick) => tick.desired));
  assert.ok(peak >= 10, `peak ${peak}`);
  const lastOver = Math.max(...panicking.map((tick) => tick.state.pools["decode"]!.decider.panicTime!));
  assert.ok(lastOver < 40);
  // Still at the peak until a stable window after the last over-threshold tick...
  assert.equal(at(ticks, lastOver + 60).desired, peak);
  // ...then down by at most half per tick, back to 1.
  for (let i = 1; i < ticks.length; i++) {
    if (ticks[i]!.desired < ticks[i - 1]!.desired)
      assert.ok(ticks[i]!.desired >= Math.floor(ticks[i - 1]!.desired / 2));
  }
  assert.equal(ticks.at(-1)?.desired, 1);
});

void test("scale-down delay holds the max desired count over its window", () => {
  const scenario = { start: 1, until_s: 16, load: (t: number) => (t < 4 ? 630 : 0) };
  const quick = { stable_window_s: 6, panic_threshold_percentage: 1000 };
  // A pool that stays at 1 replica, so the rate bounds never bind (maxDown 0).
  const still = (policy: Policy<KpaState>) => {
    let state = policy.init(0);
    const out: number[] = [];
    for (let t = 0; t <= scenario.until_s; t += 2) {
      const result = policy.decide(observation(t, [pool(sharing(1, scenario.load(t)))]), state);
      state = result.state;
      out.push(result.decision.targets["decode"]!.desired);
    }
    return out;
  };
  assert.deepEqual(still(kpa(quick)), [9, 9, 6, 3, 1, 1, 1, 1, 1]);
  assert.deepEqual(still(kpa({ ...quick, scale_down_delay_s: 10 })), [9, 9, 9, 9, 9, 9, 6, 3, 1]);
});

void test("each 2 s sample fills both 1 s buckets (hold_samples); without it averages halve", () => {
  const busy = [replica("r0", "ready", { [GAUGES.concurrent]: 140 })];
  const last = (policy: Policy<KpaState>) => {
    let state = policy.init(0);
    let desired = 0;
    for (let t = 0; t <= 60; t += 2) {
      const result = policy.decide(observation(t, [pool(busy)]), state);
      state = result.state;
      desired = result.decision.targets["decode"]!.desired;
    }
    return desired;
  };
  const quiet = { panic_threshold_percentage: 1000 };
  assert.equal(last(kpa(quiet)), 2);
  assert.equal(last(kpa({ ...quiet, hold_samples: false })), 1);
});

void test("weighted_exponential aggregation forgets a finished burst faster than the linear mean", () => {
  const load = (t: number) => (t < 4 ? 630 : 0);
  const options = { start: 1, until_s: 6, load };
  const quiet = { panic_threshold_percentage: 1000 };
  const still = (policy: Policy<KpaState>) => {
    let state = policy.init(0);
    let reason = "";
    let desired = 0;
    for (let t = 0; t <= options.until_s; t += 2) {
      const result = policy.decide(observation(t, [pool(sharing(1, load(t)))]), state);
      state = result.state;
      reason = result.decision.reasons[0] ?? "";
      desired = result.decision.targets["decode"]!.desired;
    }
    return { desired, reason };
  };
  // Linear: 3 buckets of 630 over 7 spanned = 270 → 4.
  assert.equal(still(kpa(quiet)).desired, 4);
  // EWMA (α = 0.2 for 60 buckets): 630·0.2·(0.8⁴ + 0.8⁵ + 0.8⁶) ≈ 125.9 → 2.
  const ewma = still(kpa({ ...quiet, aggregation: "weighted_exponential" }));
  assert.equal(ewma.desired, 2);
  assert.match(ewma.reason, /stable 125\.9/);
});

void test("metric rps scales on the gateway's arrival rate against 200 × 0.7 = 140", () => {
  const policy = kpa({ metric: "rps", panic_threshold_percentage: 1000 });
  const obs = observation(0, [pool(readyReplicas([0, 0, 0]))], { traffic: { window_s: 2, arrivals: 1120 } });
  const result = policy.decide(obs, policy.init(0));
  // 560 rps / 140 = 4 (startup panic holds at least the 3 ready).
  assert.equal(result.decision.targets["decode"]?.desired, 4);
  assert.match(result.decision.reasons[0] ?? "", /rps 560\.00/);
});

void test("ready replicas are extrapolated from the scraped ones; gateway_queue counts held requests", () => {
  const replicas = [...readyReplicas([100, 100]), replica("m", "ready", undefined)];
  const obs = observation(0, [pool(replicas, { role: "mixed" })], { queue: { dueBusy: 70 } });
  const mixed = kpa({ panic_threshold_percentage: 1000 }, "mixed").decide(obs, kpa().init(0));
  // 3 ready × mean 100 = 300, + 70 held = 370 → ceil(370 / 70) = 6.
  assert.match(mixed.decision.reasons[0] ?? "", /concurrency 300\.0 \(2\/3 scraped\) \+ 70 queued/);
  assert.equal(mixed.decision.targets["decode"]?.desired, 6);
  const decodeObs = observation(0, [pool(replicas)], { queue: { dueBusy: 70 } });
  const decode = kpa({ panic_threshold_percentage: 1000 }).decide(decodeObs, kpa().init(0));
  assert.equal(decode.decision.targets["decode"]?.desired, 5);
  // No replica can be read and nothing is held: no data, hold.
  const blind = kpa().decide(observation(0, [pool([replica("m", "ready", undefined)])]), kpa().init(0));
  assert.equal(blind.decision.targets["decode"]?.desired, 1);
  assert.match(blind.decision.reasons[0] ?? "", /no data/);
});

void test("scale to zero: Active a stable window → Inactive → 0 on the proxy fast path", () => {
  const ticks = run(kpa(), { start: 1, until_s: 70, load: () => 0, min: 0, role: "mixed" });
  for (const tick of ticks.filter((entry) => entry.t < 60)) {
    assert.equal(tick.desired, 1, `at ${tick.t}`);
    assert.equal(tick.state.pools["decode"]?.activity, "active");
  }
  assert.equal(at(ticks, 60).desired, 1);
  assert.equal(at(ticks, 60).state.pools["decode"]?.activity, "inactive");
  assert.match(at(ticks, 60).reason, /mark inactive/);
  // EBC = 100 − 211 < 0 kept the activator in the path from the start: the grace period has passed.
  assert.equal(at(ticks, 62).desired, 0);
  assert.equal(at(ticks, 70).desired, 0);
});

void test("scale to zero waits for the grace period in proxy mode, and for pod retention", () => {
  // TBC 0: the activator leaves the path while serving, so proxy mode starts when the pool goes idle.
  const graceful = run(kpa({ target_burst_capacity: 0 }), { start: 1, until_s: 100, load: () => 0, min: 0 });
  assert.equal(at(graceful, 60).state.pools["decode"]?.proxySince_s, 60);
  assert.equal(at(graceful, 88).desired, 1);
  assert.match(at(graceful, 88).reason, /waiting for grace period/);
  assert.equal(at(graceful, 90).desired, 0);
  const retained = run(kpa({ scale_to_zero_pod_retention_period_s: 100 }), {
    start: 1,
    until_s: 170,
    load: () => 0,
    min: 0,
  });
  assert.equal(at(retained, 158).desired, 1);
  assert.equal(at(retained, 160).desired, 0);
});

void test("scale to zero only with min 0 and enable_scale_to_zero", () => {
  const floored = run(kpa(), { start: 1, until_s: 200, load: () => 0, min: 1 });
  assert.ok(floored.every((tick) => tick.desired === 1));
  const disabled = run(kpa({ enable_scale_to_zero: false }), {
    start: 1,
    until_s: 200,
    load: () => 0,
    min: 0,
  });
  assert.ok(disabled.every((tick) => tick.desired === 1));
  assert.match(disabled.at(-1)?.reason ?? "", /scale to zero disabled/);
});

void test("scale from zero: held requests activate the pool; it turns Active when a replica is ready", () => {
  const policy = kpa({}, "mixed");
  const idle = observation(0, [pool([], { desired: 0, min: 0, role: "mixed" })]);
  const asleep = policy.decide(idle, policy.init(0));
  assert.equal(asleep.decision.targets["decode"]?.desired, 0);
  assert.equal(asleep.state.pools["decode"]?.activity, "inactive");

  const held = observation(2, [pool([], { desired: 0, min: 0, role: "mixed" })], { queue: { noReplica: 3 } });
  const woken = policy.decide(held, asleep.state);
  assert.equal(woken.decision.targets["decode"]?.desired, 1);
  assert.equal(woken.state.pools["decode"]?.activity, "activating");

  const starting = observation(4, [pool([replica("s", "starting", undefined)], { min: 0, role: "mixed" })], {
    queue: { noReplica: 3 },
  });
  const waiting = policy.decide(starting, woken.state);
  assert.equal(waiting.decision.targets["decode"]?.desired, 1);
  assert.equal(waiting.state.pools["decode"]?.activity, "activating");

  const ready = observation(30, [pool(readyReplicas([3]), { min: 0, role: "mixed" })]);
  const active = policy.decide(ready, waiting.state);
  assert.equal(active.decision.targets["decode"]?.desired, 1);
  assert.equal(active.state.pools["decode"]?.activity, "active");
  assert.equal(active.state.pools["decode"]?.activitySince_s, 30);
});

void test("a pool stuck activating past activation_timeout_s gives up to 0", () => {
  const policy = kpa();
  let state = policy.init(0);
  const desired: Record<number, number> = {};
  for (const t of [0, 2, 628, 630]) {
    const view = pool([replica("s", "starting", undefined)], { min: 0 });
    const result = policy.decide(observation(t, [view]), state);
    state = result.state;
    desired[t] = result.decision.targets["decode"]!.desired;
  }
  assert.deepEqual(desired, { 0: 1, 2: 1, 628: 1, 630: 0 });
});

void test("handleScaleToZero and nextActivity follow Knative's tables", () => {
  const stz = {
    enabled: true,
    stableWindow_s: 60,
    gracePeriod_s: 30,
    retention_s: 0,
    activationTimeout_s: 630,
  };
  const active = { activity: "active" as const, activitySince_s: 0, proxySince_s: null };
  assert.deepEqual(
    [handleScaleToZero(30, active, stz).scale, handleScaleToZero(30, active, stz).apply],
    [1, true],
  );
  assert.deepEqual(
    [handleScaleToZero(60, active, stz).scale, handleScaleToZero(60, active, stz).apply],
    [0, false],
  );
  const inactive = { activity: "inactive" as const, activitySince_s: 100, proxySince_s: 100 };
  assert.equal(handleScaleToZero(110, inactive, stz).apply, false);
  assert.equal(handleScaleToZero(130, inactive, stz).apply, true);
  assert.equal(handleScaleToZero(0, active, { ...stz, enabled: false }).scale, 1);
  // want | got vs min | status → new status
  assert.equal(nextActivity("active", 0, 1, 1), "inactive");
  assert.equal(nextActivity("inactive", 2, 0, 1), "activating");
  assert.equal(nextActivity("activating", 2, 1, 1), "active");
  assert.equal(nextActivity("inactive", -1, 0, 1), "inactive");
  assert.equal(nextActivity("active", -1, 0, 1), "activating");
  assert.equal(nextActivity("inactive", -1, 1, 1), "inactive");
  assert.equal(nextActivity("activating", -1, 1, 1), "active");
});

void test("per-pool overrides apply to their pool only; unknown pools are rejected", () => {
  const config = kpaConfigSchema.parse({
    stable_window_s: 30,
    pools: { prefill: { container_concurrency: 10 } },
  });
  const prefill = resolveKpaPoolConfig(config, "prefill");
  assert.equal(prefill.container_concurrency, 10);
  assert.equal(prefill.stable_window_s, 30);
  assert.equal(resolveKpaPoolConfig(config, "decode").container_concurrency, 0);
  assert.throws(() => createKpaPolicy(config, [{ name: "decode", role: "decode" }]), UsageError);
  const policy = createKpaPolicy(config, [
    { name: "prefill", role: "prefill" },
    { name: "decode", role: "decode" },
  ]);
  const obs = observation(0, [
    pool(readyReplicas([35]), { name: "prefill", role: "prefill" }),
    pool(readyReplicas([35])),
  ]);
  const result = policy.decide(obs, policy.init(0));
  // prefill: 35 / (10 × 0.7) = 5; decode: 35 / 70 → 1.
  assert.equal(result.decision.targets["prefill"]?.desired, 5);
  assert.equal(result.decision.targets["decode"]?.desired, 1);
});

void test("decide is pure: it never mutates its inputs and repeats itself exactly", () => {
  const policy = kpa();
  const warm = run(policy, { start: 3, until_s: 20, load: (t) => 50 * t });
  const state = deepFreeze(warm.at(-1)!.state);
  const before = JSON.stringify(state);
  const obs = deepFreeze(observation(22, [pool(sharing(3, 900))], { queue: { dueBusy: 4 } }));
  const a = policy.decide(obs, state);
  const b = policy.decide(obs, state);
  assert.deepEqual(a, b);
  assert.equal(JSON.stringify(state), before);
  assert.deepEqual(JSON.parse(JSON.stringify(a.state)), a.state);
});
