import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Observation, ReplicaView } from "../../src/policy/types.ts";
import {
  agentView,
  agentViewNames,
  agentViewSize,
  extractFeatures,
  frameSize,
  initialFeatureState,
  POOL_FEATURES,
  withActions,
  type FeatureSpec,
} from "../../src/rl/features.ts";

const SPEC: FeatureSpec = {
  pools: [
    { name: "prefill", role: "prefill" },
    { name: "decode", role: "decode" },
  ],
  stack: 3,
  count_scale: 16,
  rate_scale: 20,
  ttft_slow_s: 1,
};

function replica(
  id: string,
  phase: ReplicaView["phase"],
  concurrent: number,
  ttftCount: number,
  slow: number,
): ReplicaView {
  return {
    id,
    pool: "prefill",
    phase,
    phaseSince_s: 0,
    createdAt_s: 0,
    sku: "dgx-h100",
    gpus: 8,
    costPerHour_usd: 1,
    restarts: 0,
    lastServedAt_s: 0,
    sessions: 0,
    metrics:
      phase === "starting"
        ? undefined
        : {
            gauges: { concurrent_requests: concurrent, kv_cache_usage_perc: 0.5, gpu_utilization: 50 },
            counters: {},
            histograms: {
              time_to_first_token_seconds: {
                le: [0.5, 1, Infinity],
                cumulative: [ttftCount - slow, ttftCount - slow, ttftCount],
                count: ttftCount,
                sum: ttftCount * 0.4,
              },
            },
          },
  };
}

function observation(now: number, replicas: ReplicaView[], arrivals: number): Observation {
  const capacity = {
    sku: "dgx-h100",
    gpusPerReplica: 8,
    costPerReplicaHour_usd: 1,
    startupDelay_s: 60,
    maxBatchSize: 1,
    maxBatchTokens: 1,
    maxKvTokens: 1,
  };
  return {
    now,
    pools: [
      { name: "prefill", role: "prefill", desired: 0, min: 1, max: 4, replicas, capacity },
      { name: "decode", role: "decode", desired: 0, min: 1, max: 4, replicas: [], capacity },
    ],
    traffic: { window_s: 2, arrivals, promptTokens: arrivals * 1000, outputTokens: 0, completions: 0 },
    queue: { dueBusy: 0, noReplica: 0, oldestAge_s: 0 },
    external: {},
  };
}

const at = (frame: readonly number[], feature: (typeof POOL_FEATURES)[number]): number =>
  frame[POOL_FEATURES.indexOf(feature)]!;

void describe("features", () => {
  void it("averages load over READY replicas only and counts phases separately", () => {
    const obs = observation(
      2,
      [
        replica("a", "ready", 4, 0, 0),
        replica("b", "ready", 2, 0, 0),
        replica("c", "draining", 100, 0, 0),
        replica("d", "starting", 0, 0, 0),
      ],
      10,
    );
    const { frame } = extractFeatures(obs, initialFeatureState(SPEC), SPEC);
    assert.equal(frame.length, frameSize(SPEC));
    assert.equal(at(frame, "ready"), 2 / 16);
    assert.equal(at(frame, "starting"), 1 / 16);
    assert.equal(at(frame, "draining"), 1 / 16);
    assert.equal(at(frame, "concurrent_per_ready"), Math.log1p(3) / Math.log1p(64));
    assert.equal(at(frame, "gpu_utilization"), 0.5);
    // Arrivals per serving replica (ready + starting): 5 req/s over 3.
    assert.equal(at(frame, "arrivals_per_replica"), Math.log1p(5 / 3) / Math.log1p(20));
  });

  void it("turns cumulative TTFT histograms into per-window values per replica", () => {
    let state = initialFeatureState(SPEC);
    state = extractFeatures(observation(2, [replica("a", "ready", 1, 10, 2)], 5), state, SPEC).state;
    // Next window: replica a recorded 10 more first tokens, 6 of them slow; replica b is new (4, 0 slow).
    const { frame } = extractFeatures(
      observation(4, [replica("a", "ready", 1, 20, 8), replica("b", "ready", 1, 4, 0)], 5),
      state,
      SPEC,
    );
    assert.equal(at(frame, "ttft_slow_fraction"), 6 / 14);
    assert.ok(Math.abs(at(frame, "ttft_mean") - Math.log1p(40) / Math.log1p(1000)) < 1e-12);
  });

  void it("stacks the last k frames oldest first and records actions", () => {
    let state = initialFeatureState(SPEC);
    const frames: number[][] = [];
    for (let t = 1; t <= 4; t++) {
      const out = extractFeatures(observation(2 * t, [replica("a", "ready", t, 0, 0)], t), state, SPEC);
      frames.push(out.frame);
      state = withActions(out.state, [t / 10, -3]);
    }
    assert.deepEqual(state.frames, frames.slice(1));
    assert.deepEqual(state.lastActions, [0.4, -1], "clipped to [-1, 1]");
    const joint = agentView(state.frames, SPEC, [0, 1]);
    assert.equal(joint.length, agentViewSize(SPEC, 2));
    assert.deepEqual(Array.from(joint.slice(0, frameSize(SPEC))), frames[1]);
    const names = agentViewNames(SPEC, [1]);
    assert.equal(names.length, agentViewSize(SPEC, 1));
    assert.equal(names[0], "t-2.decode.ready");
    assert.ok(names.includes("now.arrival_rate"));
  });

  void it("never mutates the state it is given", () => {
    const state = initialFeatureState(SPEC);
    const copy = JSON.parse(JSON.stringify(state)) as unknown;
    extractFeatures(observation(2, [replica("a", "ready", 1, 3, 1)], 3), state, SPEC);
    assert.deepEqual(state, copy);
  });
});
