import assert from "node:assert/strict";
import { test } from "node:test";

import { createStaticPolicy, staticConfigSchema } from "../../src/policy/static.ts";
import { busy, deepFreeze, observation, pool } from "./everai-helpers.ts";

const POOLS = [
  { name: "prefill", role: "prefill" },
  { name: "decode", role: "decode" },
] as const;

void test("auto keeps every pool at the size it had when first observed", () => {
  const policy = createStaticPolicy(staticConfigSchema.parse({}), POOLS);
  assert.equal(policy.name, "static");
  const start = [
    pool({
      name: "prefill",
      role: "prefill",
      desired: 4,
      replicas: [busy("p1"), busy("p2"), busy("p3"), busy("p4")],
    }),
    pool({ name: "decode", role: "decode", desired: 2, replicas: [busy("d1"), busy("d2")] }),
  ];
  const first = policy.decide(observation(0, start), policy.init(0));
  assert.deepEqual(first.decision.targets, { prefill: { desired: 4 }, decode: { desired: 2 } });
  assert.deepEqual(first.state, { pinned: { prefill: 4, decode: 2 } });
  assert.match(first.decision.reasons.join("\n"), /pinned at 4/);

  // Load, crashes or another actor moved the pools: static puts them back, whatever the load says.
  const moved = [
    pool({ name: "prefill", role: "prefill", desired: 1, replicas: [busy("p1")] }),
    pool({ name: "decode", role: "decode", desired: 9, replicas: [busy("d1")] }),
  ];
  const later = policy.decide(observation(600, moved, { dueBusy: 50 }), first.state);
  assert.deepEqual(later.decision.targets, { prefill: { desired: 4 }, decode: { desired: 2 } });
  assert.deepEqual(later.state, first.state);
  assert.match(later.decision.reasons.join("\n"), /keeping 2/);
});

void test("explicit replicas fix the named pools; unnamed pools follow auto", () => {
  const policy = createStaticPolicy(staticConfigSchema.parse({ replicas: { prefill: 3 } }), POOLS);
  const views = [
    pool({ name: "prefill", role: "prefill", replicas: [busy("p1")] }),
    pool({ name: "decode", role: "decode", replicas: [busy("d1"), busy("d2")] }),
  ];
  const { decision } = policy.decide(observation(0, views), policy.init(0));
  assert.deepEqual(decision.targets, { prefill: { desired: 3 }, decode: { desired: 2 } });
  assert.match(decision.reasons.join("\n"), /fixed at 3 replica\(s\) \(config\)/);
});

void test("a pool not observed yet is held, then pinned when it appears", () => {
  const policy = createStaticPolicy(staticConfigSchema.parse({}), POOLS);
  const first = policy.decide(
    observation(0, [pool({ name: "prefill", replicas: [busy("p1")] })]),
    policy.init(0),
  );
  assert.deepEqual(first.decision.targets, { prefill: { desired: 1 } });
  assert.match(first.decision.reasons.join("\n"), /decode: pool not observed/);
  const views = [pool({ name: "prefill", replicas: [] }), pool({ name: "decode", replicas: [busy("d1")] })];
  assert.deepEqual(policy.decide(observation(2, views), first.state).decision.targets, {
    prefill: { desired: 1 },
    decode: { desired: 1 },
  });
});

void test("config: defaults, strict keys, unknown pools named in the error", () => {
  assert.deepEqual(staticConfigSchema.parse({}), { replicas: "auto", interval_s: 60 });
  assert.throws(() => staticConfigSchema.parse({ replica: "auto" }), /replica/);
  assert.throws(() => staticConfigSchema.parse({ replicas: { prefill: -1 } }));
  assert.throws(
    () => createStaticPolicy(staticConfigSchema.parse({ replicas: { mixed: 2 } }), POOLS),
    /static: replicas\.mixed: unknown pool "mixed"/,
  );
});

void test("decide is pure and deterministic", () => {
  const policy = createStaticPolicy(staticConfigSchema.parse({}), POOLS);
  const obs = deepFreeze(observation(0, [pool({ name: "prefill", replicas: [busy("p1")] })]));
  const state = deepFreeze(policy.init(0));
  const one = policy.decide(obs, state);
  assert.deepEqual(policy.decide(obs, state), one);
  assert.deepEqual(state, { pinned: {} });
  assert.deepEqual(JSON.parse(JSON.stringify(one.state)), one.state);
});
