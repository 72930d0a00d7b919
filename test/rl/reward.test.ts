import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rlRewardSchema } from "../../src/config/rl-schema.ts";
import { computeReward, originSloScore, type IntervalInfo, type SloThresholds } from "../../src/rl/reward.ts";

const THRESHOLDS: SloThresholds = {
  ttft: { p50: 2, p90: 3, p99: 6 },
  tbt: { p50: 1.25, p90: 1.5, p99: 5 },
};

/** 2 s interval: 3 prefill (1 starting) and 2 decode replicas of 8 GPUs; 10 completions, 2 missed. */
function info(overrides: Partial<IntervalInfo> = {}): IntervalInfo {
  return {
    time_s: 10,
    interval_s: 2,
    arrivals: 12,
    arrived_prompt_tokens: 12_000,
    completed: 10,
    missed: 2,
    unfinished: 0,
    gpu_seconds: 5 * 8 * 2,
    pools: [
      {
        name: "prefill",
        role: "prefill",
        starting: 1,
        active: 2,
        draining: 0,
        busy_fraction: 0.9,
        kv_usage: 0.1,
        pending_prefill_tokens: 3000,
      },
      {
        name: "decode",
        role: "decode",
        starting: 0,
        active: 2,
        draining: 0,
        busy_fraction: 0.5,
        kv_usage: 0.85,
        pending_prefill_tokens: 0,
      },
    ],
    scale_events: 3,
    refused: 0,
    queued: 4,
    queued_prompt_tokens: 4000,
    ttft_slowdown: { p50: 1.5, p90: 4, p99: 9 },
    tbt_slowdown: { p50: 1, p90: 1.2, p99: 2 },
    prompt_max_pending_batch_tokens: 4096,
    ...overrides,
  };
}

const close = (actual: number, expected: number): void =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} != ${expected}`);

void describe("rewards", () => {
  void it("splitscale: cost in 8-GPU replicas, miss fraction, switches, overload and queue", () => {
    const config = rlRewardSchema.parse({ w_cost: 0.1, w_slo: 2, w_switch: 0.05, w_util: 1, w_queue: 0.5 });
    const { reward, terms } = computeReward(info(), config, THRESHOLDS);
    close(terms.cost!, -0.1 * 5); // 80 GPU-s over 2 s / 8 GPUs = 5 replicas
    close(terms.slo!, -2 * 0.2); // 2 of 10 missed
    close(terms.switch!, -0.05 * 3);
    // overload: prefill (0.9 − 0.8)/0.2 = 0.5; decode max(0.5, 0.85) → 0.25; mean 0.375
    close(terms.util!, -1 * 0.375);
    close(terms.queue!, -0.5 * (Math.log1p(4) / Math.log1p(1000)));
    close(reward, -0.5 - 0.4 - 0.15 - 0.375 - 0.5 * (Math.log1p(4) / Math.log1p(1000)));
  });

  void it("splitscale: unfinished requests at a cut-off count as misses; instances as the cost unit", () => {
    const config = rlRewardSchema.parse({ w_cost: 1, w_slo: 1, w_switch: 0, cost_unit: "instances" });
    const { terms } = computeReward(info({ unfinished: 5 }), config, THRESHOLDS);
    close(terms.slo!, -(2 + 5) / (10 + 5));
    close(terms.cost!, -5);
    const empty = computeReward(info({ completed: 0, missed: 0 }), config, THRESHOLDS);
    close(empty.terms.slo!, 0);
  });

  void it("drl-rule: the fork's formula with its defaults", () => {
    const config = rlRewardSchema.parse({ variant: "drl-rule" });
    const { reward, terms } = computeReward(info(), config, THRESHOLDS);
    close(terms.cost!, -0.1 * 4); // ACTIVE instances only
    close(terms.queue!, -1 * (4000 / 12_000));
    const congestion = 3000 / (2 * 4096);
    close(terms.congestion!, -1 * congestion * congestion);
    close(terms.util!, 0); // w_util defaults to 0
    close(reward, -0.4 - 1 / 3 - congestion * congestion);
    // No ACTIVE prefill instance: the fork divided by zero; here the congestion saturates at 1.
    const starved = info({
      pools: [
        {
          name: "prefill",
          role: "prefill",
          starting: 1,
          active: 0,
          draining: 0,
          busy_fraction: 0,
          kv_usage: 0,
          pending_prefill_tokens: 9000,
        },
        {
          name: "decode",
          role: "decode",
          starting: 0,
          active: 1,
          draining: 0,
          busy_fraction: 0,
          kv_usage: 0.9,
          pending_prefill_tokens: 0,
        },
      ],
    });
    const withUtil = rlRewardSchema.parse({ variant: "drl-rule", w_util: 10 });
    const r = computeReward(starved, withUtil, THRESHOLDS);
    close(r.terms.congestion!, -1);
    close(r.terms.util!, -10 * (0.9 - 0.8));
  });

  void it("origin-slo: the per-percentile score and 0.1·(w_slo·slo − w_cost·cost)", () => {
    // TTFT p50 1.5 ≤ 2 → 30; p90 4 > 3 → 20 − 5·(1/3); p99 9 > 6 → 20 − 5·0.5; TBT all within → 60; violated → no bonus
    const expected = 30 + (20 - 5 / 3) + (20 - 2.5) + 60;
    close(originSloScore(info(), THRESHOLDS, false), expected);
    const config = rlRewardSchema.parse({ variant: "origin-slo" });
    const joint = computeReward(info(), config, THRESHOLDS);
    close(joint.reward, 0.1 * (0.5 * expected - 0.5 * 4));
    const promptAgent = computeReward(info(), config, THRESHOLDS, ["prefill"]);
    close(promptAgent.reward, 0.1 * (0.5 * expected - 0.5 * 2));
    const perfect = info({
      ttft_slowdown: { p50: 1, p90: 1, p99: 1 },
      tbt_slowdown: { p50: 1, p90: 1, p99: 1 },
    });
    close(originSloScore(perfect, THRESHOLDS, false), 210);
  });

  void it("origin-slo: an empty window is perfect only when nothing waits (upstream: always)", () => {
    const empty = info({ completed: 0, missed: 0, ttft_slowdown: null, tbt_slowdown: null });
    close(originSloScore(empty, THRESHOLDS, false), 0);
    close(originSloScore(empty, THRESHOLDS, true), 210);
    close(originSloScore({ ...empty, queued: 0 }, THRESHOLDS, false), 210);
  });
});
