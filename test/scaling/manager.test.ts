import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateConfig } from "../../src/config/config.ts";
import type { Decision, Observation, Policy } from "../../src/policy/types.ts";
import { InstanceStatus } from "../../src/serving/instance.ts";
import type { ScalingManager, StatusSummary } from "../../src/scaling/manager.ts";
import type { InstanceTemplate } from "../../src/serving/cluster.ts";
import { runSimulation, type RunResult } from "../../src/simulate/run.ts";

/** A policy that sets pool targets at given times (and holds otherwise). */
function scripted(
  steps: readonly { at: number; targets: Record<string, number> }[],
  interval_s = 1,
): Policy<number> {
  return {
    name: "scripted",
    interval_s,
    init: () => 0,
    decide(observation: Observation, next: number) {
      let index = next;
      const targets: Record<string, { desired: number }> = {};
      while (index < steps.length && steps[index]!.at <= observation.now + 1e-9) {
        for (const [pool, desired] of Object.entries(steps[index]!.targets)) targets[pool] = { desired };
        index++;
      }
      const decision: Decision = { targets, reasons: [`step ${index}`] };
      return { decision, state: index };
    },
  };
}

function config(overrides: Record<string, unknown> = {}) {
  return validateConfig(
    {
      model: "llama2-70b",
      cluster: { servers: [{ sku: "dgx-h100", count: 2 }] },
      start_state: { type: "splitwise", prompt: { num_instances: 1 }, token: { num_instances: 1 } },
      scheduler: { name: "mixed_pool", on_saturation: "queue" },
      workload: {
        type: "generator",
        seed: 3,
        arrival: { process: "poisson", rate_per_s: 4 },
        lengths: {
          prompt: { dist: "uniform", min: 100, max: 2000 },
          output: { dist: "uniform", min: 10, max: 300 },
        },
        duration_s: 300,
      },
      autoscaling: {
        startup_delay_s: 30,
        drain_check_interval_s: 1,
        pools: { prefill: { min: 1, max: 4 }, decode: { min: 1, max: 3 } },
      },
      ...overrides,
    },
    "test",
  );
}

function run(policy: Policy, overrides: Record<string, unknown> = {}): RunResult {
  return runSimulation({ config: config(overrides), baseDir: process.cwd(), source: "test" }, { policy });
}

void describe("the seeds' applications[0].scaling_manager block", () => {
  const base = {
    start_state: { type: "splitwise", prompt: { num_instances: 1 }, token: { num_instances: 1 } },
  };
  void it("turns autoscaling on with its scale_up_delay and drain_check_interval", () => {
    const config = validateConfig(
      { ...base, applications: [{ scaling_manager: { scale_up_delay: 7, drain_check_interval: 2 } }] },
      "seed.yaml",
    );
    assert.equal(config.autoscaling?.startup_delay_s, 7);
    assert.equal(config.autoscaling?.drain_check_interval_s, 2);
  });

  void it("starts instances after the DRL fork's 1 s when scale_up_delay is missing", () => {
    const config = validateConfig({ ...base, applications: [{ scaling_manager: {} }] }, "seed.yaml");
    assert.equal(config.autoscaling?.startup_delay_s, 1);
  });

  void it("keeps an autoscaling block's own startup delay", () => {
    const config = validateConfig(
      { ...base, autoscaling: { startup_delay_s: 30 }, applications: [{ scaling_manager: {} }] },
      "seed.yaml",
    );
    assert.equal(config.autoscaling?.startup_delay_s, 30);
  });
});

void describe("ScalingManager in a simulation", () => {
  void it("starts instances after the startup delay, drains them, and removes their servers", () => {
    const result = run(
      scripted([
        { at: 10, targets: { prefill: 3 } },
        { at: 100, targets: { prefill: 1 } },
      ]),
    );
    const events = result.autoscaling!.manager.events;
    const ups = events.filter((event) => event.action === "scale_up");
    assert.equal(ups.length, 2);
    for (const up of ups) {
      const activate = events.find((event) => event.action === "activate" && event.instance === up.instance);
      assert.ok(activate !== undefined, `instance ${up.instance} became active`);
      assert.equal(activate.time_s - up.time_s, 30);
    }
    const drains = events.filter((event) => event.action === "drain");
    assert.equal(drains.length, 2);
    for (const drain of drains) {
      const removal = events.find((event) => event.action === "remove" && event.instance === drain.instance);
      assert.ok(removal !== undefined, `drained instance ${drain.instance} was removed`);
      assert.ok(removal.time_s >= drain.time_s);
    }
    // Every drained instance's server was released at the same time as the instance.
    const cluster = result.autoscaling!.manager;
    for (const instance of cluster.instancesOf()) assert.notEqual(instance.status, InstanceStatus.Removed);
    assert.equal(result.summary.requests.completed, result.summary.requests.arrived);
    assert.equal(result.summary.scaling?.events, 4);
    assert.equal(result.summary.scaling?.max_replicas, 4);
    assert.equal(result.summary.scaling?.final_replicas, 2);
  });

  void it("gives a scaled-up instance its tensor parallelism's GPUs (all the server's in upstream mode)", () => {
    // The start state cuts each server into two TP4 instances, so a third prefill instance is a scale-up.
    const policy = scripted([{ at: 5, targets: { prefill: 3 } }]);
    const tp4 = {
      start_state: {
        type: "splitwise",
        prompt: { num_instances: 1, tensor_parallelism: 4 },
        token: { num_instances: 1, tensor_parallelism: 4 },
      },
    };
    for (const allGpus of [false, true]) {
      const result = run(policy, { ...tp4, compat: { uniform_uses_all_gpus: allGpus } });
      const instances = result.outcome.instances;
      const started = instances.find((instance) => instance.tag === "prompt" && instance.created_s > 0);
      assert.ok(started !== undefined, "an instance was scaled up");
      const startState = instances.find((instance) => instance.tag === "prompt" && instance.created_s === 0)!;
      assert.equal(started.gpus, allGpus ? 8 : 4, `uniform_uses_all_gpus: ${allGpus}`);
      // Like the start state's own instances (which are cut by TP in both modes here).
      if (!allGpus) assert.equal(started.gpus, startState.gpus);
    }
  });

  void it("never places work on an instance that is not ACTIVE", () => {
    const policy = scripted([
      { at: 5, targets: { prefill: 4, decode: 3 } },
      { at: 40, targets: { prefill: 1, decode: 1 } },
      { at: 80, targets: { prefill: 3, decode: 2 } },
      { at: 90, targets: { prefill: 2, decode: 1 } },
    ]);
    const loaded = { config: config(), baseDir: process.cwd(), source: "test" };
    let placements = 0;
    let violations = 0;
    // Wrap the scheduler of this run: every placement must target ACTIVE instances only.
    const result = runSimulation(loaded, {
      policy: {
        ...policy,
        init(now) {
          return policy.init(now);
        },
      },
      onSchedulerCreated(scheduler) {
        const schedule = scheduler.schedule.bind(scheduler);
        scheduler.schedule = (request) => {
          const placement = schedule(request);
          if (placement !== null) {
            placements++;
            if (
              placement.prompt.status !== InstanceStatus.Active ||
              placement.token.status !== InstanceStatus.Active
            )
              violations++;
          }
          return placement;
        };
      },
    });
    assert.ok(placements > 0);
    assert.equal(violations, 0);
    assert.equal(result.summary.requests.completed, result.summary.requests.arrived);
  });

  void it("cancels a scale-up that is no longer wanted and counts its GPU time as starting", () => {
    const result = run(
      scripted([
        { at: 10, targets: { prefill: 2 } },
        { at: 20, targets: { prefill: 1 } },
      ]),
    );
    const events = result.autoscaling!.manager.events;
    assert.equal(events.filter((event) => event.action === "cancel_scale_up").length, 1);
    assert.equal(events.filter((event) => event.action === "activate").length, 0);
    const byState = result.summary.scaling!.gpu_seconds_by_state;
    assert.equal(byState.starting, 10 * 8);
  });

  void it("re-activates a draining instance when load comes back instead of starting a new one", () => {
    // Long decodes keep the drained decode instance busy long enough for the reversal to catch it.
    const result = run(
      scripted([
        { at: 2, targets: { decode: 2 } },
        { at: 60, targets: { decode: 1 } },
        { at: 61, targets: { decode: 2 } },
      ]),
      {
        workload: {
          type: "generator",
          seed: 5,
          arrival: { process: "poisson", rate_per_s: 8 },
          lengths: { prompt: { dist: "fixed", value: 500 }, output: { dist: "fixed", value: 2000 } },
          duration_s: 120,
        },
      },
    );
    const events = result.autoscaling!.manager.events;
    assert.equal(events.filter((event) => event.action === "abort_drain").length, 1);
    assert.equal(events.filter((event) => event.action === "scale_up").length, 1);
  });

  void it("GPU-seconds by state add up to the servers' GPU-hours", () => {
    const result = run(
      scripted([
        { at: 10, targets: { prefill: 3, decode: 2 } },
        { at: 150, targets: { prefill: 1, decode: 1 } },
        { at: 200, targets: { prefill: 2 } },
      ]),
    );
    const byState = result.summary.scaling!.gpu_seconds_by_state;
    const total = byState.starting + byState.active + byState.draining;
    assert.ok(
      Math.abs(total - result.summary.gpu_hours! * 3600) < 1e-6 * total,
      `${total} vs ${result.summary.gpu_hours! * 3600}`,
    );
    assert.ok(byState.starting > 0 && byState.draining >= 0);
    assert.equal(byState.unassigned, 0, "every billed GPU runs an instance at TP 8");
  });

  void it("GPU-seconds by state count the GPUs no instance runs on as unassigned (TP 4 on 8-GPU servers)", () => {
    const result = run(scripted([{ at: 5, targets: { prefill: 3 } }]), {
      start_state: {
        type: "splitwise",
        prompt: { num_instances: 1, tensor_parallelism: 4 },
        token: { num_instances: 1, tensor_parallelism: 4 },
      },
    });
    const byState = result.summary.scaling!.gpu_seconds_by_state;
    const billed = result.summary.gpu_hours! * 3600;
    const total = byState.starting + byState.active + byState.draining + byState.unassigned;
    assert.ok(Math.abs(total - billed) < 1e-6 * billed, `${total} vs ${billed}`);
    // The scaled-up prefill instance uses 4 of its server's 8 GPUs for the rest of the run.
    const scaledUp = result.outcome.instances.find((instance) => instance.created_s > 0)!;
    const expected = 4 * (result.outcome.endTime_s - scaledUp.created_s);
    assert.ok(
      Math.abs(byState.unassigned - expected) < 1e-6 * expected,
      `${byState.unassigned} vs ${expected}`,
    );
  });

  void it("refuses scale-ups beyond the pool max, max_total_instances and the SKU quota, with the reason", () => {
    const result = run(scripted([{ at: 5, targets: { prefill: 10, decode: 3 } }]), {
      autoscaling: {
        startup_delay_s: 5,
        max_total_instances: 5,
        servers_available: { "dgx-h100": 4 },
        pools: { prefill: { min: 1, max: 3 }, decode: { min: 1, max: 3 } },
      },
    });
    const manager = result.autoscaling!.manager;
    const refusals = manager.events
      .filter((event) => event.action === "refused")
      .map((event) => event.detail);
    // prefill is clamped to its max 3 (2 new servers); then decode hits the quota of 4 servers.
    assert.equal(
      manager.events.filter((event) => event.action === "scale_up" && event.pool === "prefill").length,
      2,
    );
    assert.ok(
      refusals.some((reason) => reason.includes("no dgx-h100 server available")),
      refusals.join(" | "),
    );
    const quotaResult = run(scripted([{ at: 5, targets: { prefill: 3, decode: 3 } }]), {
      autoscaling: {
        startup_delay_s: 5,
        max_total_instances: 3,
        pools: { prefill: { min: 1, max: 3 }, decode: { min: 1, max: 3 } },
      },
    });
    const reasons = quotaResult
      .autoscaling!.manager.events.filter((event) => event.action === "refused")
      .map((event) => event.detail);
    assert.ok(
      reasons.some((reason) => reason.includes("max_total_instances 3")),
      reasons.join(" | "),
    );
  });

  void it("keeps every pool within [min, max] whatever the policy asks", () => {
    const result = run(scripted([{ at: 5, targets: { prefill: 0, decode: 99 } }]));
    for (const sample of result.autoscaling!.controller.samples) {
      if (sample.pool === "prefill") assert.ok(sample.desired >= 1);
      if (sample.pool === "decode") assert.ok(sample.desired <= 3);
    }
  });

  void it("is deterministic: the same config and seed give the same decisions and summary", () => {
    const steps = [
      { at: 10, targets: { prefill: 3, decode: 2 } },
      { at: 120, targets: { prefill: 1, decode: 1 } },
    ];
    const a = run(scripted(steps));
    const b = run(scripted(steps));
    assert.deepEqual({ ...a.summary, wall_s: 0 }, { ...b.summary, wall_s: 0 });
    assert.deepEqual(a.autoscaling!.manager.events, b.autoscaling!.manager.events);
  });
});

void describe("ScalingManager API (seeds 000/001)", () => {
  /** Runs a simulation whose policy does nothing but call `act(manager)` at its first decision. */
  function withManager(act: (manager: ScalingManager) => void): RunResult {
    let manager: ScalingManager | undefined;
    let acted = false;
    const policy: Policy<number> = {
      name: "api",
      interval_s: 5,
      init: () => 0,
      decide(_observation, state) {
        if (!acted && manager !== undefined) {
          acted = true;
          act(manager);
        }
        return { decision: { targets: {}, reasons: [] }, state };
      },
    };
    return runSimulation(
      { config: config(), baseDir: process.cwd(), source: "test" },
      { policy, onAutoscalingAttached: (attached) => (manager = attached.manager) },
    );
  }

  const template: InstanceTemplate = {
    kind: "splitwise",
    maxBatchSize: 512,
    maxBatchTokens: 2048,
    maxPreemptions: 4,
    tensorParallelism: 8,
    pipelineParallelism: 1,
  };

  void it("scaleUpFull(instanceCfg, parallelism, tag, serverSku) adds a server and an instance in the tag's pool", () => {
    let after: StatusSummary | undefined;
    const result = withManager((manager) => {
      const up = manager.scaleUpFull(template, { tensor: 8, pipeline: 1 }, "token", "dgx-h100");
      assert.ok(up !== undefined);
      assert.equal(up.instance.pool, "decode");
      assert.equal(up.instance.numGpus, 8);
      after = manager.statusSummary();
    });
    assert.deepEqual(after, {
      active_instances: 2,
      scaling_up_instances: 1,
      draining_instances: 0,
      total_servers: 3,
      total_instances: 3,
    });
    assert.equal(result.summary.requests.completed, result.summary.requests.arrived);
  });

  void it("scaleDownInstance keeps the server; scaleDownServer refuses while it hosts an instance", () => {
    let refusal: string | undefined;
    let serverId = -1;
    const result = withManager((manager) => {
      const decode = manager.getActiveInstances("decode")[0]!;
      serverId = decode.serverId;
      // A replacement first, so the pool stays at its minimum while the original drains.
      assert.ok(manager.scaleUpFull(template, { tensor: 8, pipeline: 1 }, "token") !== undefined);
      refusal = manager.scaleDownServer(manager.serverById(serverId)!);
      assert.equal(manager.scaleDownInstance(decode, "test"), true);
      assert.equal(
        manager.scaleDownInstance(decode, "again"),
        false,
        "a draining instance cannot be drained twice",
      );
    });
    assert.match(refusal ?? "", /still hosts 1 instance/);
    const manager = result.autoscaling!.manager;
    assert.ok(manager.events.some((event) => event.action === "remove"));
    const server = manager.serverById(serverId)!;
    assert.equal(server.instances.length, 0);
    assert.equal(server.removedAt, -1, "the server outlives its instance");
    assert.equal(manager.scaleDownServer(server), undefined);
  });
});
