import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ppoSchema } from "../../src/config/rl-schema.ts";
import { Rng } from "../../src/core/rng.ts";
import type { ActionKind } from "../../src/rl/actions.ts";
import { Actor } from "../../src/rl/actor.ts";
import { gae, PpoAgent, RewardScaler } from "../../src/rl/ppo.ts";

void describe("gae", () => {
  void it("matches the recursion by hand", () => {
    const { advantages, returns } = gae([1, 0, 2], [0.5, 0.2, 1], 0.9, 0.8, 0);
    const d2 = 2 + 0 - 1;
    const d1 = 0 + 0.9 * 1 - 0.2;
    const d0 = 1 + 0.9 * 0.2 - 0.5;
    const a2 = d2;
    const a1 = d1 + 0.9 * 0.8 * a2;
    const a0 = d0 + 0.9 * 0.8 * a1;
    assert.deepEqual(
      [...advantages].map((v) => v.toFixed(12)),
      [a0, a1, a2].map((v) => v.toFixed(12)),
    );
    assert.ok(Math.abs(returns[0]! - (a0 + 0.5)) < 1e-12);
  });

  void it("bootstraps a truncated episode with the given value", () => {
    assert.ok(Math.abs(gae([0], [0], 0.5, 1, 4).advantages[0]! - 2) < 1e-12);
  });
});

/**
 * A one-step task with a known optimum: observation x ∈ {-1, +1} (random), reward −(a − 0.6·x)².
 * The best mean action is 0.6·x; a policy that ignores x earns at best −0.36 − σ².
 */
function contextualBandit(kind: ActionKind, iterations: number, seed: number) {
  const settings = ppoSchema.parse({
    hidden: [16],
    lr_actor: 3e-3,
    lr_critic: 3e-3,
    epochs: 8,
    minibatch: 64,
    action_std_init: 0.4,
    action_std_decay: 0.05,
    action_std_min: 0.1,
    action_std_decay_every_steps: 2000,
    entropy_coef: kind === "discrete" ? 0.001 : 0,
    normalize_reward: false,
  });
  const agent = PpoAgent.create({ name: "joint", pools: [0], inputSize: 1 }, kind, settings, seed);
  const rng = new Rng(seed).fork("bandit");
  const batch = 256;
  const evaluate = (): { meanReturn: number; plus: number; minus: number } => {
    const actor = new Actor(agent.snapshot());
    const value = (x: number): number => {
      const a = actor.deterministic([x])[0]!;
      return kind === "continuous" ? a : a - 1; // discrete choices 0,1,2 → -1,0,+1
    };
    const plus = value(1);
    const minus = value(-1);
    const target = kind === "continuous" ? 0.6 : 1;
    return { meanReturn: -((plus - target) ** 2 + (minus + target) ** 2) / 2, plus, minus };
  };
  const before = evaluate();
  let steps = 0;
  for (let it = 0; it < iterations; it++) {
    const actor = new Actor(agent.snapshot());
    const obs = new Float64Array(batch);
    const actions = new Float64Array(batch);
    const logp = new Float64Array(batch);
    const rewards = new Float64Array(batch);
    for (let i = 0; i < batch; i++) {
      const x = rng.nextFloat() < 0.5 ? -1 : 1;
      const sampled = actor.sample([x], rng);
      const a = sampled.action[0]!;
      const effect = kind === "continuous" ? Math.max(-1, Math.min(1, a)) : a - 1;
      const target = kind === "continuous" ? 0.6 * x : x;
      obs[i] = x;
      actions[i] = a;
      logp[i] = sampled.logp;
      rewards[i] = -((effect - target) ** 2);
    }
    const values = agent.values(obs, batch);
    // Every step is its own terminal episode.
    const advantages = Float64Array.from(rewards, (r, i) => r - values[i]!);
    agent.update({ rows: batch, obs, actions, logp, advantages, returns: rewards }, rng.fork(`update-${it}`));
    agent.decayActionStd(steps, steps + batch);
    steps += batch;
  }
  return { before, after: evaluate(), agent };
}

void describe("PPO", () => {
  void it("learns a continuous contextual bandit: return improves and the mean approaches the optimum", () => {
    const { before, after, agent } = contextualBandit("continuous", 60, 3);
    assert.ok(after.meanReturn > before.meanReturn + 0.2, `${before.meanReturn} → ${after.meanReturn}`);
    assert.ok(Math.abs(after.plus - 0.6) < 0.1, `mean action at x=+1: ${after.plus}`);
    assert.ok(Math.abs(after.minus + 0.6) < 0.1, `mean action at x=-1: ${after.minus}`);
    assert.ok(agent.actionStd < 0.4, "the action std decayed");
  });

  void it("learns the discrete variant (categorical over -1, 0, +1)", () => {
    const { before, after } = contextualBandit("discrete", 40, 5);
    assert.ok(after.meanReturn > before.meanReturn + 0.5, `${before.meanReturn} → ${after.meanReturn}`);
    assert.equal(after.plus, 1);
    assert.equal(after.minus, -1);
  });

  void it("is reproducible from the seed and resumes exactly from JSON", () => {
    const a = contextualBandit("continuous", 6, 9).agent;
    const b = contextualBandit("continuous", 6, 9).agent;
    assert.deepEqual(Array.from(a.actor.params), Array.from(b.actor.params));
    const copy = PpoAgent.fromJSON(JSON.parse(JSON.stringify(a.toJSON())) as never, a.settings);
    assert.deepEqual(copy.toJSON(), a.toJSON());
  });

  void it("scales rewards by the running std of discounted returns", () => {
    const scaler = new RewardScaler();
    const scale = scaler.absorb([[10, 10, 10, 10]], 0.5);
    // returns 10, 15, 17.5, 18.75: the std of those (and the prior) sets the scale
    assert.ok(scale > 0 && scale < 1);
    const restored = new RewardScaler(scaler.stats.toJSON());
    assert.equal(restored.scale, scaler.scale);
  });
});
