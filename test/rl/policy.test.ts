import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { rlSchema } from "../../src/config/rl-schema.ts";
import "../../src/policy/builtin.ts";
import { loadPolicyFile } from "../../src/policy/policy-file.ts";
import { findPolicy, type PolicyContext } from "../../src/policy/registry.ts";
import type { Observation } from "../../src/policy/types.ts";
import { Actor } from "../../src/rl/actor.ts";
import { ScalingEnv, envSettings } from "../../src/rl/env.ts";
import { PpoAgent } from "../../src/rl/ppo.ts";
import { policyFile } from "../../src/rl/train.ts";
import { runSimulation } from "../../src/simulate/run.ts";
import { smallConfig } from "./helpers.ts";

const CONTEXT: PolicyContext = {
  source: "test",
  pools: [
    { name: "prefill", role: "prefill" },
    { name: "decode", role: "decode" },
  ],
};

/** A policy file with random (seeded) weights, written to a temporary directory. */
function writePolicy(rlOverrides: Record<string, unknown> = {}): { path: string; agents: PpoAgent[] } {
  const loaded = smallConfig({}, rlOverrides);
  const rl = rlSchema.parse(loaded.config.rl);
  const settings = envSettings(loaded, rl);
  // A larger output layer than training's init, so the random policy actually scales.
  const agents = settings.agents.map((layout) => {
    const agent = PpoAgent.create(layout, rl.action, rl.ppo, 4);
    for (let i = 0; i < agent.actor.params.length; i++) agent.actor.params[i]! *= 30;
    return agent;
  });
  const dir = mkdtempSync(join(tmpdir(), "rl-policy-"));
  const path = join(dir, "policy.json");
  writeFileSync(path, JSON.stringify(policyFile(settings, rl, agents, { config: "test" })));
  return { path, agents };
}

function observation(now: number, ready: number): Observation {
  const replica = (id: string, pool: string) => ({
    id,
    pool,
    phase: "ready" as const,
    phaseSince_s: 0,
    createdAt_s: 0,
    sku: "dgx-h100",
    gpus: 8,
    costPerHour_usd: 1,
    restarts: 0,
    lastServedAt_s: 0,
    sessions: 0,
    metrics: {
      gauges: { concurrent_requests: 3, kv_cache_usage_perc: 0.4, gpu_utilization: 70 },
      counters: {},
      histograms: {
        time_to_first_token_seconds: { le: [0.5, 1, Infinity], cumulative: [5, 8, 10], count: 10, sum: 6 },
      },
    },
  });
  const capacity = {
    sku: "dgx-h100",
    gpusPerReplica: 8,
    costPerReplicaHour_usd: 1,
    startupDelay_s: 10,
    maxBatchSize: 512,
    maxBatchTokens: 2048,
    maxKvTokens: 100_000,
  };
  return {
    now,
    pools: [
      {
        name: "prefill",
        role: "prefill",
        desired: ready,
        min: 1,
        max: 4,
        replicas: Array.from({ length: ready }, (_, i) => replica(`p${i}`, "prefill")),
        capacity,
      },
      {
        name: "decode",
        role: "decode",
        desired: 1,
        min: 1,
        max: 3,
        replicas: [replica("d0", "decode")],
        capacity,
      },
    ],
    traffic: { window_s: 2, arrivals: 9, promptTokens: 9000, outputTokens: 2000, completions: 8 },
    queue: { dueBusy: 3, noReplica: 0, oldestAge_s: 1.5 },
    external: {},
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

void describe("rl policy", () => {
  void it("is registered as `rl` and loads a policy.json as a policy file (compare's rl:FILE)", () => {
    const { path } = writePolicy();
    const byName = findPolicy("rl", "test").create({ checkpoint: path }, CONTEXT);
    const byFile = loadPolicyFile(path, CONTEXT);
    assert.equal(byName.name, "rl");
    assert.equal(byFile.name, "rl");
    assert.equal(byName.interval_s, 2);
    assert.throws(() => findPolicy("rl", "test").create({}, CONTEXT), /checkpoint/);
    assert.throws(
      () =>
        findPolicy("rl", "test").create(
          { checkpoint: path },
          { source: "test", pools: [{ name: "mixed", role: "mixed" }] },
        ),
      /trained on pool "prefill"/,
    );
  });

  void it("is pure and deterministic: same observation and state, same decision; inputs untouched", () => {
    const { path } = writePolicy();
    const policy = loadPolicyFile(path, CONTEXT);
    let state = deepFreeze(policy.init(0));
    const decisions: string[] = [];
    for (let t = 2; t <= 10; t += 2) {
      const obs = deepFreeze(observation(t, 2));
      const first = policy.decide(obs, state);
      const again = policy.decide(obs, state);
      assert.deepEqual(again, first);
      decisions.push(JSON.stringify(first.decision));
      state = deepFreeze(first.state);
    }
    // A fresh instance from the same file replays the same decisions.
    const replay = loadPolicyFile(path, CONTEXT);
    let replayState = replay.init(0);
    for (let t = 2, i = 0; t <= 10; t += 2, i++) {
      const out = replay.decide(observation(t, 2), replayState);
      assert.equal(JSON.stringify(out.decision), decisions[i]);
      replayState = out.state;
    }
  });

  void it("acts on the mean action (split agents too)", () => {
    const { path, agents } = writePolicy({ agents: "split", action: "discrete" });
    const policy = loadPolicyFile(path, CONTEXT);
    const { decision } = policy.decide(observation(2, 2), policy.init(0));
    assert.equal(agents.length, 2);
    for (const target of Object.values(decision.targets)) assert.ok(Number.isInteger(target.desired));
    assert.match(decision.reasons[0]!, /^rl/);
  });

  void it("runs unchanged in the simulator: the controller reproduces the environment's deterministic episode", () => {
    const { path, agents } = writePolicy({ episode: { mode: "whole", max_drain_s: 10_000 } });
    const loaded = smallConfig({}, { episode: { mode: "whole", max_drain_s: 10_000 } });
    const env = new ScalingEnv(loaded, rlSchema.parse(loaded.config.rl));
    const actor = new Actor(agents[0]!.snapshot());
    let obs = env.reset(loaded.config.seed);
    while (!env.done) obs = env.step(actor.deterministic(obs)).observation;
    const episode = env.summary();
    const configured = {
      ...loaded,
      config: {
        ...loaded.config,
        autoscaling: { ...loaded.config.autoscaling!, policy: "rl", policy_config: { checkpoint: path } },
      },
    };
    const run = runSimulation(configured);
    assert.ok(run.summary.scaling!.events > 0, "the random policy scales");
    assert.equal(run.summary.scaling!.events, episode.scale_events);
    assert.ok(Math.abs(run.summary.gpu_hours! - episode.gpu_hours) < 1e-9);
    assert.ok(Math.abs(run.summary.slo.attainment - episode.slo_attainment) < 1e-12);
  });

  void it("imports nothing from the simulator, the scaling manager or the serving model", () => {
    const root = resolve(dirname(new URL(import.meta.url).pathname), "../../src");
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, "utf8");
      for (const match of text.matchAll(/^import[^;]*?from\s+"(\.[^"]+)"/gms)) {
        visit(resolve(dirname(file), match[1]!));
      }
    };
    visit(join(root, "rl", "policy.ts"));
    const forbidden = [...seen].filter((file) =>
      ["simulate", "scaling", "serving", "live"].some((dir) => file.startsWith(join(root, dir))),
    );
    assert.deepEqual(forbidden, []);
    assert.ok(seen.size > 3);
  });
});
