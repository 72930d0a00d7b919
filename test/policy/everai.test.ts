import assert from "node:assert/strict";
import { test } from "node:test";

import {
  createEveraiFreeWorkerPolicy,
  createEveraiPolicy,
  everaiConfigSchema,
  everaiFactors,
  everaiFreeWorkerConfigSchema,
} from "../../src/policy/everai.ts";
import type { EveraiState } from "../../src/policy/everai.ts";
import type { Decision, Policy, PoolView, ReplicaView } from "../../src/policy/types.ts";
import { busy, deepFreeze, free, observation, pool, replica } from "./everai-helpers.ts";

const POOLS = [{ name: "mixed", role: "mixed" }] as const;
const NOW = 1_000;

/** Spec §5.8's common arguments: min 1, max 3, step 2, max_queue 1, max_idle 120. */
const VECTOR_ARGS = {
  min_workers: 1,
  max_workers: 3,
  scale_up_step: 2,
  max_queue_size: 1,
  max_idle_time: 120,
};

function simple(overrides: Record<string, unknown> = {}): Policy<EveraiState> {
  return createEveraiPolicy(everaiConfigSchema.parse({ ...VECTOR_ARGS, ...overrides }), POOLS);
}

function decideOnce(policy: Policy<EveraiState>, replicas: readonly ReplicaView[], dueBusy = 0): Decision {
  return policy.decide(observation(NOW, [pool({ replicas })], { dueBusy }), policy.init(NOW)).decision;
}

void test("E1: no workers, empty queue → ScaleUp(1) to reach min", () => {
  const decision = decideOnce(simple(), []);
  assert.deepEqual(decision.targets, { mixed: { desired: 1 } });
  assert.match(decision.reasons.join("\n"), /min_workers 1/);
});

void test("E2: [Busy], QueueDueBusy 3 → ScaleUp(2)", () => {
  assert.deepEqual(decideOnce(simple(), [busy("a")], 3).targets, { mixed: { desired: 3 } });
});

void test("E3: [Busy, Busy], QueueDueBusy 3 → ScaleUp(1) (room 1)", () => {
  assert.deepEqual(decideOnce(simple(), [busy("a"), busy("b")], 3).targets, { mixed: { desired: 3 } });
});

void test("E4: [Busy×3], QueueDueBusy 3 → no action", () => {
  const decision = decideOnce(simple(), [busy("a"), busy("b"), busy("c")], 3);
  assert.deepEqual(decision.targets, {});
  assert.match(decision.reasons.join("\n"), /at max_workers 3/);
});

void test("E5: [Free(now), Free(now), Free(idle 180 s)], empty queue → ScaleDown(the idle one)", () => {
  const replicas = [free("a", NOW), free("b", NOW), free("idle", NOW - 180)];
  const decision = decideOnce(simple(), replicas);
  assert.deepEqual(decision.targets, { mixed: { desired: 2, victims: ["idle"] } });
  assert.match(decision.reasons.join("\n"), /scale down idle/);
});

void test("E6: FreeWorker, min_free 1, summary {Busy: 1}, [Busy] → ScaleUp(2)", () => {
  const { max_queue_size: _unused, ...args } = VECTOR_ARGS;
  const policy = createEveraiFreeWorkerPolicy(
    everaiFreeWorkerConfigSchema.parse({ ...args, min_free_workers: 1 }),
    POOLS,
  );
  assert.equal(policy.name, "everai-free-worker");
  const decision = policy.decide(
    observation(NOW, [pool({ replicas: [busy("a")] })]),
    policy.init(NOW),
  ).decision;
  assert.deepEqual(decision.targets, { mixed: { desired: 3 } });
  assert.match(decision.reasons.join("\n"), /0 Free < min_free_workers 1/);
});

/** E7's fleet: 3 Free workers idle for > 120 s (created at 10, 20, 30) and 2 Busy ones. */
const E7_FLEET = [free("f10", 0, 10), free("f20", 0, 20), free("f30", 0, 30), busy("b1"), busy("b2")];

void test("E7 (upstream_negative_slice_bug: true): min 4, max 8, 3 Free idle + 2 Busy → 2 × ScaleDown", () => {
  const policy = simple({ min_workers: 4, max_workers: 8, upstream_negative_slice_bug: true });
  const decision = decideOnce(policy, E7_FLEET);
  // k = min(3 − 4, 3) = −1; Python's candidates[:−1] keeps the two newest: the fleet drops to 3 < min 4.
  assert.deepEqual(decision.targets, { mixed: { desired: 3, victims: ["f30", "f20"] } });
  assert.match(decision.reasons.join("\n"), /negative-slice bug/);
});

void test("E7 (default, bug fixed): min 4, max 8, 3 Free idle + 2 Busy → no action, never below min", () => {
  const decision = decideOnce(simple({ min_workers: 4, max_workers: 8 }), E7_FLEET);
  assert.deepEqual(decision.targets, {});
  assert.match(decision.reasons.join("\n"), /no scale-down/);
});

void test("Factors mapping: phases, gauges, draining, unscraped replicas and the gateway queue", () => {
  const view = pool({
    replicas: [
      replica({ id: "start", phase: "starting", createdAt_s: 5 }),
      replica({ id: "run", running: 2 }),
      replica({ id: "wait", waiting: 1 }),
      replica({ id: "idle", lastServedAt_s: 7, sessions: 2 }),
      replica({ id: "blind", unscraped: true }),
      replica({ id: "gone", phase: "draining" }),
    ],
  });
  const factors = everaiFactors(observation(NOW, [view], { dueBusy: 2, noReplica: 3 }), view);
  assert.deepEqual(
    factors.workers.map((w) => [w.worker_id, w.status]),
    [
      ["start", "Inflight"],
      ["run", "Busy"],
      ["wait", "Busy"],
      ["idle", "Free"],
      ["blind", "Busy"],
    ],
  );
  assert.deepEqual(factors.worker, { Inflight: 1, Free: 1, Busy: 3 });
  assert.deepEqual(factors.queue, { NotDispatch: 0, QueueDueBusy: 5, QueueDueSession: 0 });
  const idle = factors.workers.find((w) => w.worker_id === "idle");
  assert.deepEqual(idle, {
    worker_id: "idle",
    started_at: 0,
    last_service_time: 7,
    number_of_sessions: 2,
    status: "Free",
  });
});

void test("requests held for lack of any replica count as QueueDueBusy", () => {
  const decision = simple().decide(observation(NOW, [pool({ replicas: [busy("a")] })], { noReplica: 2 }), {
    history: {},
  }).decision;
  assert.deepEqual(decision.targets, { mixed: { desired: 3 } });
});

void test("an Inflight worker blocks further scale-up, and sessions or recent service protect a Free worker", () => {
  const starting = replica({ id: "new", phase: "starting", createdAt_s: 990 });
  assert.deepEqual(decideOnce(simple(), [busy("a"), starting], 10).targets, {});
  const pinned = replica({ id: "pinned", lastServedAt_s: 0, sessions: 1, createdAt_s: 50 });
  const decision = decideOnce(simple(), [free("old", 0), pinned, free("recent", NOW - 119, 60)]);
  assert.deepEqual(decision.targets, { mixed: { desired: 2, victims: ["old"] } });
});

void test("victims are the newest idle workers, down to min_workers", () => {
  const replicas = [free("old", 0, 0), free("mid", 0, 100), free("new", 0, 200), free("busy-ish", NOW, 300)];
  const decision = decideOnce(simple({ max_workers: 5 }), replicas);
  assert.deepEqual(decision.targets, { mixed: { desired: 1, victims: ["new", "mid", "old"] } });
  const floor2 = decideOnce(simple({ min_workers: 2, max_workers: 5 }), replicas);
  assert.deepEqual(floor2.targets, { mixed: { desired: 2, victims: ["new", "mid"] } });
});

void test("the seed 004 walk-through: 1 worker, queue builds → 2, load ends → back to 1 after max_idle_time", () => {
  // The seed's configmap: min 1, max 5, max_queue_size 2, scale_up_step 1, max_idle_time 60.
  const policy = createEveraiPolicy(
    everaiConfigSchema.parse({
      min_workers: 1,
      max_workers: 5,
      max_queue_size: 2,
      scale_up_step: 1,
      max_idle_time: 60,
    }),
    POOLS,
  );
  let state = policy.init(0);
  const step = (now: number, replicas: readonly ReplicaView[], dueBusy = 0): Decision => {
    const result = policy.decide(observation(now, [pool({ replicas })], { dueBusy }), state);
    state = result.state;
    assert.ok(result.decision.reasons.length > 0);
    return result.decision;
  };
  const first = (lastServed: number): ReplicaView => free("ULSU", lastServed, 0);

  assert.deepEqual(step(0, [first(0)]).targets, {}, "low load: one Free worker, empty queue");
  assert.deepEqual(step(10, [busy("ULSU")], 3).targets, { mixed: { desired: 2 } }, "3 WorkerBusy > 2");
  const inflight = replica({ id: "bqZJ", phase: "starting", createdAt_s: 10 });
  assert.deepEqual(
    step(12, [busy("ULSU"), inflight], 6).targets,
    {},
    "one Inflight blocks a second scale-up",
  );
  assert.deepEqual(step(40, [busy("ULSU"), busy("bqZJ", 10)], 2).targets, {}, "2 queued is not > 2");
  const both = (lastServed: number): ReplicaView[] => [first(lastServed), free("bqZJ", lastServed, 10)];
  assert.deepEqual(step(130, both(130)).targets, {}, "load just ended");
  assert.deepEqual(step(189, both(130)).targets, {}, "59 s idle < max_idle_time");
  assert.deepEqual(
    step(190, both(130)).targets,
    { mixed: { desired: 1, victims: ["bqZJ"] } },
    "after max_idle_time the newer worker goes",
  );
  const draining = replica({ id: "bqZJ", phase: "draining", createdAt_s: 10, lastServedAt_s: 130 });
  assert.deepEqual(step(192, [first(130), draining]).targets, {}, "draining is not a worker; 1 = min stays");
  assert.deepEqual(step(10_000, [first(130)]).targets, {}, "never below min_workers");
});

void test("average_histories: queue unknown while warming up, then floored means; idle scale-down keeps running", () => {
  const policy = simple({ average_histories: 2 });
  let state = policy.init(0);
  const step = (now: number, replicas: readonly ReplicaView[], dueBusy: number): Decision => {
    const result = policy.decide(observation(now, [pool({ replicas })], { dueBusy }), state);
    state = result.state;
    return result.decision;
  };
  assert.deepEqual(step(0, [busy("a")], 9).targets, {}, "no history: queue None → no scale-up");
  assert.match(step(2, [busy("a")], 9).reasons.join("\n"), /average warming up/);
  assert.deepEqual(
    step(4, [busy("a")], 0).targets,
    { mixed: { desired: 3 } },
    "floor((0 + 9 + 9) / 3) = 6 > 1",
  );
  let fresh = policy.init(0);
  const run = (now: number, dueBusy: number): Decision => {
    const result = policy.decide(observation(now, [pool({ replicas: [busy("a")] })], { dueBusy }), fresh);
    fresh = result.state;
    return result.decision;
  };
  run(0, 0);
  run(2, 1);
  assert.deepEqual(run(4, 3).targets, {}, "floor((3 + 1 + 0) / 3) = 1 ≤ max_queue_size 1");
  assert.deepEqual(run(6, 5).targets, { mixed: { desired: 3 } }, "floor((5 + 3 + 1) / 3) = 3 > 1");
  assert.deepEqual(fresh.history.mixed?.length, 2, "the history keeps average_histories samples");

  const warmup = simple({ average_histories: 5 });
  const idle = [free("old", 0, 0), free("new", 0, 10)];
  const decision = warmup.decide(observation(NOW, [pool({ replicas: idle })]), warmup.init(0)).decision;
  assert.deepEqual(decision.targets, { mixed: { desired: 1, victims: ["new"] } });
});

void test("FreeWorker keeps min_free_workers Free, waits for Inflight, and reads the averaged summary", () => {
  const config = everaiFreeWorkerConfigSchema.parse({ max_workers: 4, min_free_workers: 2 });
  const policy = createEveraiFreeWorkerPolicy(config, POOLS);
  const state = policy.init(0);
  const decide = (replicas: readonly ReplicaView[]): Decision =>
    policy.decide(observation(NOW, [pool({ replicas })]), state).decision;
  assert.deepEqual(decide([busy("a"), free("b", NOW)]).targets, { mixed: { desired: 3 } });
  assert.deepEqual(decide([free("a", NOW), free("b", NOW)]).targets, {});
  assert.deepEqual(decide([free("a", NOW), replica({ id: "s", phase: "starting" })]).targets, {});

  const averaging = createEveraiFreeWorkerPolicy({ ...config, average_histories: 1 }, POOLS);
  const warm = averaging.decide(observation(NOW, [pool({ replicas: [busy("a")] })]), averaging.init(0));
  assert.deepEqual(warm.decision.targets, {}, "no history: worker summary None → no scale-up");
  const next = averaging.decide(observation(NOW + 2, [pool({ replicas: [busy("a")] })]), warm.state);
  assert.deepEqual(next.decision.targets, { mixed: { desired: 2 } });
});

void test("decide is pure and deterministic: frozen inputs, same output twice, JSON state", () => {
  const policy = simple({ average_histories: 1 });
  const obs = deepFreeze(
    observation(NOW, [pool({ replicas: [free("b", 0, 20), free("a", 0, 10), busy("c", 5)] })], {
      dueBusy: 4,
    }),
  );
  const state = deepFreeze(policy.init(0));
  const one = policy.decide(obs, state);
  const two = policy.decide(obs, state);
  assert.deepEqual(one, two);
  assert.deepEqual(state, { history: {} });
  assert.deepEqual(JSON.parse(JSON.stringify(one.state)), one.state);
  const later = policy.decide(obs, deepFreeze(one.state));
  assert.deepEqual(policy.decide(obs, deepFreeze(one.state)), later);
  assert.ok(later.decision.reasons.every((reason) => reason.length > 0));
});

void test("pools: every pool independently by default; a named pool only; an unknown pool is an error", () => {
  const pools = [
    { name: "prefill", role: "prefill" },
    { name: "decode", role: "decode" },
  ] as const;
  const views: PoolView[] = [
    pool({ name: "prefill", role: "prefill", replicas: [busy("p1")] }),
    pool({ name: "decode", role: "decode", replicas: [free("d1", NOW), free("d2", 0, 5)] }),
  ];
  const args = { ...VECTOR_ARGS, max_workers: 4 };
  const every = createEveraiPolicy(everaiConfigSchema.parse(args), pools);
  // Each pool is one EverAI app behind the shared gateway queue: a backlog grows both.
  assert.deepEqual(every.decide(observation(NOW, views, { dueBusy: 3 }), every.init(0)).decision.targets, {
    prefill: { desired: 3 },
    decode: { desired: 4 },
  });
  assert.deepEqual(every.decide(observation(NOW, views), every.init(0)).decision.targets, {
    decode: { desired: 1, victims: ["d2"] },
  });
  const one = createEveraiPolicy(everaiConfigSchema.parse({ ...args, pool: "prefill" }), pools);
  assert.deepEqual(
    Object.keys(one.decide(observation(NOW, views, { dueBusy: 3 }), one.init(0)).decision.targets),
    ["prefill"],
  );
  assert.throws(
    () => createEveraiPolicy(everaiConfigSchema.parse({ pool: "mixed" }), pools),
    /everai: pool: unknown pool "mixed"/,
  );
});

void test("config: seed 004's keys and upstream defaults, strict, validated", () => {
  const defaults = everaiConfigSchema.parse({});
  assert.deepEqual(defaults, {
    pool: "",
    min_workers: 1,
    max_workers: 1,
    scale_up_step: 1,
    max_idle_time: 120,
    average_histories: 0,
    upstream_negative_slice_bug: false,
    interval_s: 2,
    max_queue_size: 1,
  });
  assert.equal(everaiFreeWorkerConfigSchema.parse({}).min_free_workers, 1);
  assert.equal(createEveraiPolicy(defaults, POOLS).name, "everai");
  assert.equal(createEveraiPolicy(defaults, POOLS).interval_s, 2);
  assert.throws(() => everaiConfigSchema.parse({ max_idle_time_s: 60 }), /max_idle_time_s/);
  assert.throws(() => everaiConfigSchema.parse({ min_free_workers: 1 }), /min_free_workers/);
  assert.throws(() => everaiFreeWorkerConfigSchema.parse({ max_queue_size: 1 }), /max_queue_size/);
  assert.throws(
    () => everaiConfigSchema.parse({ min_workers: 3, max_workers: 2 }),
    /max_workers must be >= min_workers/,
  );
  assert.throws(() => everaiConfigSchema.parse({ scale_up_step: 1.5 }));
});
