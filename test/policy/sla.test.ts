import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/errors.ts";
import type { IterationTimeModel } from "../../src/model/performance.ts";
import type { PolicyContext } from "../../src/policy/registry.ts";
import {
  createSlaPolicy,
  decodeKvHigh,
  decodeReplicas,
  erlangC,
  prefillReplicas,
  slaConfigSchema,
  slaPerformance,
  type SlaState,
} from "../../src/policy/sla.ts";
import type { Observation, PoolCapacity, PoolView, ReplicaView } from "../../src/policy/types.ts";

/** A linear toy engine: prefill 0.1 ms per token + 20 ms, decode steps of 30 ms. */
const latency: IterationTimeModel = {
  iterationTime: (shape) => (shape.numPrefill > 0 ? 0.02 + shape.prefillTokens * 1e-4 : 0.03),
  unloaded: (prompt) => ({ ttft_s: 0.02 + prompt * 1e-4, tbt_s: 0.03 }),
};

const capacity: PoolCapacity = {
  sku: "dgx-h100",
  gpusPerReplica: 8,
  costPerReplicaHour_usd: 38,
  startupDelay_s: 60,
  maxBatchSize: 512,
  maxBatchTokens: 2048,
  maxKvTokens: 100_000,
};

const context: PolicyContext = {
  source: "test",
  pools: [
    { name: "prefill", role: "prefill", capacity, latency },
    { name: "decode", role: "decode", capacity, latency },
  ],
};

function replica(
  pool: string,
  index: number,
  phase: ReplicaView["phase"],
  gauges: Record<string, number> = {},
): ReplicaView {
  return {
    id: `${pool}-${index}`,
    pool,
    phase,
    phaseSince_s: 0,
    createdAt_s: 0,
    sku: "dgx-h100",
    gpus: 8,
    costPerHour_usd: 38,
    restarts: 0,
    lastServedAt_s: 0,
    sessions: 0,
    metrics: { gauges, counters: {}, histograms: {} },
  };
}

function pool(name: string, replicas: ReplicaView[]): PoolView {
  return {
    name,
    role: name === "prefill" ? "prefill" : "decode",
    desired: replicas.filter((r) => r.phase !== "draining").length,
    min: 1,
    max: 20,
    replicas,
    capacity,
  };
}

function observation(
  now: number,
  rate: number,
  prefill: ReplicaView[],
  decode: ReplicaView[],
  held = 0,
): Observation {
  return {
    now,
    pools: [pool("prefill", prefill), pool("decode", decode)],
    traffic: {
      window_s: 2,
      arrivals: rate * 2,
      promptTokens: rate * 2 * 1000,
      outputTokens: rate * 2 * 200,
      completions: rate * 2,
    },
    queue: { dueBusy: held, noReplica: 0, oldestAge_s: held > 0 ? 1 : 0 },
    external: {},
  };
}

const ready = (name: string, count: number): ReplicaView[] =>
  Array.from({ length: count }, (_, i) => replica(name, i, "ready"));

void describe("sla building blocks", () => {
  void it("Erlang C matches textbook values", () => {
    // M/M/2 at load 1 Erlang: C = 1/3; M/M/1: C = rho.
    assert.ok(Math.abs(erlangC(2, 1) - 1 / 3) < 1e-12);
    assert.ok(Math.abs(erlangC(1, 0.6) - 0.6) < 1e-12);
    assert.equal(erlangC(3, 3), 1);
    assert.equal(erlangC(3, 0), 0);
  });

  void it("prefill replicas grow with load and with a stricter miss target", () => {
    const config = slaConfigSchema.parse({});
    const performance = slaPerformance(context.pools[0]!, config, "test");
    const at = (tokensPerS: number, miss = config.ttft_miss_target): number =>
      prefillReplicas(tokensPerS, tokensPerS / 1000, 1000, performance, miss, config);
    assert.equal(at(0), 0);
    const low = at(2000);
    const high = at(20_000);
    assert.ok(low >= 1 && high > low, `${low} < ${high}`);
    assert.ok(at(20_000, 0.0001) >= high);
    // Never busier than max_prefill_utilization: 20,000 tok/s over ~8,000 tok/s per replica at 0.7.
    assert.ok(high >= Math.ceil(20_000 / (performance.prefillTokensPerS * config.max_prefill_utilization)));
  });

  void it("decode replicas follow KV demand; the spread term adds headroom", () => {
    const config = slaConfigSchema.parse({});
    const performance = slaPerformance(context.pools[1]!, config, "test");
    // 5 req/s × 200 tokens × 30 ms = 30 in flight × 1,200 tokens × 1.2 bias = 43,200 tokens.
    assert.equal(decodeReplicas(5, 1000, 200, 1, 100_000, performance, config), 1);
    assert.equal(decodeReplicas(15, 1000, 200, 1, 100_000, performance, config), 2);
    assert.ok(decodeKvHigh(1000, 100, { ...config, decode_overflow_z: 2 }) > 1000);
    assert.equal(decodeKvHigh(1000, 100, config), 1000);
  });

  void it("refuses bad settings, naming the key", () => {
    assert.throws(
      () => createSlaPolicy({ ttft_miss_target: 2 }, context),
      (error: unknown) => error instanceof UsageError && error.message.includes("ttft_miss_target"),
    );
    assert.throws(
      () => createSlaPolicy({ prefil_utilization: 0.5 }, context),
      (error: unknown) =>
        error instanceof UsageError && /unknown key "prefil_utilization"/.test(error.message),
    );
  });
});

void describe("sla decisions", () => {
  void it("scales up at once for more load, counting starting replicas (no cascade)", () => {
    const policy = createSlaPolicy({}, context);
    let state = policy.init(0);
    ({ state } = policy.decide(observation(2, 2, ready("prefill", 1), ready("decode", 1)), state));
    const surge = policy.decide(observation(4, 40, ready("prefill", 1), ready("decode", 1)), state);
    const wanted = surge.decision.targets.prefill!.desired;
    assert.ok(wanted > 1, `wanted ${wanted}`);
    // The replicas it asked for are starting: the same load asks for no more than that.
    const starting = [
      ...ready("prefill", 1),
      ...Array.from({ length: wanted - 1 }, (_, i) => replica("prefill", i + 1, "starting")),
    ];
    const again = policy.decide(observation(6, 40, starting, ready("decode", 1)), surge.state);
    assert.ok(again.decision.targets.prefill!.desired <= wanted + 1);
  });

  void it("scales down only after the plan wanted fewer for the whole hold window", () => {
    const policy = createSlaPolicy(
      { scale_down_hold_s: 30, level_halflife_s: 2, trend_halflife_s: 2 },
      context,
    );
    let state: SlaState = policy.init(0);
    const fleet = (): [ReplicaView[], ReplicaView[]] => [ready("prefill", 6), ready("decode", 1)];
    const desired: number[] = [];
    for (let t = 2; t <= 60; t += 2) {
      const [prefill, decode] = fleet();
      const result = policy.decide(observation(t, 0.5, prefill, decode), state);
      state = result.state;
      desired.push(result.decision.targets.prefill!.desired);
    }
    // Never below the current 6 before 30 s of history, then down.
    assert.ok(
      desired.slice(0, 14).every((value) => value === 6),
      desired.join(","),
    );
    assert.ok(desired[desired.length - 1]! < 6, desired.join(","));
  });

  void it("builds a burst reserve while requests are held, and it decays afterwards", () => {
    const policy = createSlaPolicy({ burst_reserve_halflife_s: 10 }, context);
    let state = policy.init(0);
    for (let t = 2; t <= 20; t += 2)
      ({ state } = policy.decide(observation(t, 5, ready("prefill", 2), ready("decode", 1), 3), state));
    const built = state.reserve;
    assert.ok(built > 0.5, `reserve ${built}`);
    for (let t = 22; t <= 60; t += 2)
      ({ state } = policy.decide(observation(t, 5, ready("prefill", 2), ready("decode", 1)), state));
    assert.ok(state.reserve < built / 4, `${state.reserve} vs ${built}`);
  });

  void it("is pure: the same observation and state give the same decision, and nothing is mutated", () => {
    const policy = createSlaPolicy({}, context);
    const state = policy.decide(
      observation(2, 5, ready("prefill", 2), ready("decode", 1)),
      policy.init(0),
    ).state;
    const frozen = JSON.stringify(state);
    const obs = observation(4, 12, ready("prefill", 2), ready("decode", 1));
    const obsText = JSON.stringify(obs);
    const a = policy.decide(obs, state);
    const b = policy.decide(obs, state);
    assert.deepEqual(a, b);
    assert.equal(JSON.stringify(state), frozen);
    assert.equal(JSON.stringify(obs), obsText);
    assert.deepEqual(JSON.parse(JSON.stringify(a.state)), a.state);
  });

  void it("needs measured speeds when a pool has no performance model", () => {
    const bare: PolicyContext = {
      source: "live.yaml",
      pools: [{ name: "prefill", role: "prefill", capacity }],
    };
    assert.throws(() => createSlaPolicy({}, bare), /prefill_tokens_per_s and decode_step_s/);
    const policy = createSlaPolicy({ prefill_tokens_per_s: 10_000, decode_step_s: 0.03 }, bare);
    assert.equal(policy.name, "sla");
  });
});
