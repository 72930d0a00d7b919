import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rlSchema } from "../../src/config/rl-schema.ts";
import { Rng } from "../../src/core/rng.ts";
import { continuousDelta, discreteDelta, roundHalfAwayFromZero } from "../../src/rl/actions.ts";
import { ScalingEnv, type StepResult } from "../../src/rl/env.ts";
import { agentViewNames, POOL_FEATURES } from "../../src/rl/features.ts";
import { smallConfig } from "./helpers.ts";

function envFor(overrides: Record<string, unknown> = {}, rl: Record<string, unknown> = {}): ScalingEnv {
  const loaded = smallConfig(overrides, rl);
  return new ScalingEnv(loaded, rlSchema.parse(loaded.config.rl));
}

/** Runs an episode with actions from a seeded stream; returns everything observable. */
function trajectory(env: ScalingEnv, seed: number, actionSeed: number) {
  const rng = new Rng(actionSeed);
  const first = Array.from(env.reset(seed));
  const steps: { obs: number[]; reward: number; done: boolean; info: unknown }[] = [];
  let result: StepResult | undefined;
  do {
    result = env.step([rng.normal() * 0.5, rng.normal() * 0.5]);
    const { breakdown, ...info } = result.info;
    steps.push({
      obs: Array.from(result.observation),
      reward: result.reward,
      done: result.done,
      info: { ...info, breakdown },
    });
  } while (!result.done);
  return { first, steps, summary: env.summary() };
}

/** Index of a feature of the newest frame in the joint observation. */
function featureIndex(env: ScalingEnv, name: string): number {
  const names = agentViewNames(env.settings.spec, [0, 1]);
  const index = names.indexOf(`now.${name}`);
  assert.ok(index >= 0, `no feature ${name}`);
  return index;
}

void describe("ScalingEnv", () => {
  void it("is deterministic: the same seed and actions give identical trajectories", () => {
    const a = trajectory(envFor(), 7, 1);
    const b = trajectory(envFor(), 7, 1);
    assert.ok(a.steps.length > 30);
    assert.deepEqual(a, b);
    const c = trajectory(envFor(), 8, 1);
    assert.notDeepEqual(a.summary, c.summary, "another seed picks another window");
  });

  void it("steps every decision interval and ends after the window drains", () => {
    const env = envFor();
    env.reset(1);
    assert.equal(env.lastObservation?.now, 2);
    const result = env.step([0, 0]);
    assert.equal(result.info.time_s, 4);
    assert.equal(result.info.interval_s, 2);
    let last = result;
    while (!last.done) last = env.step([0, 0]);
    const summary = env.summary();
    assert.ok(summary.sim_time_s >= 120 && summary.sim_time_s <= 180 + 2);
    assert.equal(summary.arrived, summary.completed, "a held fleet finishes the window");
    assert.throws(() => env.step([0, 0]), /episode is over/);
  });

  void it("maps continuous actions to deltas rounded half away from zero, clipped to the step", () => {
    assert.equal(continuousDelta(0.25, 2), 1);
    assert.equal(continuousDelta(-0.25, 2), -1);
    assert.equal(continuousDelta(0.24, 2), 0);
    assert.equal(continuousDelta(-0.2, 2), 0);
    assert.equal(continuousDelta(3.7, 2), 2, "clipped to [-1, 1] first");
    assert.equal(continuousDelta(-9, 2), -2);
    assert.equal(continuousDelta(Number.NaN, 2), 0);
    assert.equal(Object.is(roundHalfAwayFromZero(-0.4), -0), false, "never -0");
    assert.equal(roundHalfAwayFromZero(2.5), 3);
    assert.deepEqual([0, 1, 2].map(discreteDelta), [-1, 0, 1]);
  });

  void it("clamps through the ScalingManager: pool minimum, startup delay as starting replicas, pool max", () => {
    const env = envFor();
    env.reset(3);
    const manager = env.scalingManager;
    // Remove from a pool at its minimum (1): nothing happens.
    let result = env.step([-1, -1]);
    assert.deepEqual(manager.poolStatus("prefill"), { starting: 0, active: 1, draining: 0 });
    assert.equal(result.info.scale_events, 0);
    // +2 prefill: two starting replicas (10 s startup), visible in the observation and its features.
    result = env.step([1, 0]);
    assert.equal(result.info.pools[0]!.starting, 2);
    assert.equal(result.info.scale_events, 2);
    const view = env.lastObservation!.pools.find((pool) => pool.name === "prefill")!;
    assert.equal(view.replicas.filter((replica) => replica.phase === "starting").length, 2);
    const starting = featureIndex(env, "prefill.starting");
    assert.equal(result.observation[starting], 2 / 16);
    assert.equal(result.observation[featureIndex(env, "prefill.ready")], 1 / 16);
    // After the startup delay they are ready.
    for (let i = 0; i < 6; i++) result = env.step([0, 0]);
    assert.deepEqual(manager.poolStatus("prefill"), { starting: 0, active: 3, draining: 0 });
    assert.equal(result.observation[featureIndex(env, "prefill.ready")], 3 / 16);
    // +2 more: the pool max (4) lets one through and refuses the other.
    result = env.step([1, 0]);
    assert.equal(manager.poolStatus("prefill").starting + manager.poolStatus("prefill").active, 4);
    assert.equal(result.info.refused, 0, "reconcile clamps to the pool max before asking");
  });

  void it("honours max_total_instances across pools", () => {
    const env = envFor({
      autoscaling: {
        startup_delay_s: 10,
        decision_interval_s: 2,
        max_total_instances: 3,
        pools: { prefill: { min: 1, max: 4 }, decode: { min: 1, max: 3 } },
      },
    });
    env.reset(3);
    const result = env.step([1, 1]);
    const total = result.info.pools.reduce(
      (sum, pool) => sum + pool.starting + pool.active + pool.draining,
      0,
    );
    assert.equal(total, 3);
    assert.ok(result.info.refused >= 1, "the manager logs the refused scale-ups");
  });

  void it("reports GPU time and rewards consistent with the manager", () => {
    const env = envFor();
    env.reset(5);
    let gpuSeconds = 0;
    let result: StepResult;
    do {
      result = env.step([0.5, 0]);
      gpuSeconds += result.info.gpu_seconds;
      const terms = Object.values(result.info.breakdown.terms).reduce((sum, term) => sum + term, 0);
      assert.ok(Math.abs(terms - result.reward) < 1e-12);
    } while (!result.done);
    const manager = env.scalingManager.gpuSecondsByState();
    const first = 2 * 8 * 2; // [0, 2 s] before the first decision: two 8-GPU replicas
    assert.ok(Math.abs(gpuSeconds + first - (manager.starting + manager.active + manager.draining)) < 1e-6);
  });

  void it("gives each split agent its own pool's features", () => {
    const env = envFor({}, { agents: "split" });
    env.reset(2);
    env.step([1, 0]); // prefill grows, decode does not
    const [prompt, token] = env.agentObservations();
    const perPool = POOL_FEATURES.length;
    const frame = prompt!.length / 2;
    // Newest frame: the prompt agent's pool block is the prefill pool, the token agent's the decode pool.
    const promptStarting = prompt![frame + 1]!;
    const tokenStarting = token![frame + 1]!;
    assert.ok(promptStarting > 0);
    assert.equal(tokenStarting, 0);
    // Shared features (after the pool block) are identical for both agents.
    assert.deepEqual(Array.from(prompt!.slice(frame + perPool)), Array.from(token!.slice(frame + perPool)));
  });
});
