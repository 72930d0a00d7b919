import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import { InstanceStatus, type Instance } from "../../src/serving/instance.ts";
import type { SimRequest } from "../../src/serving/request.ts";
import { TokenJsqScheduler } from "../../src/serving/schedulers/colocated.ts";
import { MixedPoolScheduler } from "../../src/serving/schedulers/mixed-pool.ts";
import { SCHEDULER_OPTIONS } from "./simulation-helpers.ts";

/** The fields token_jsq reads and writes on an instance. */
interface FakeInstance {
  label: string;
  status: InstanceStatus;
  assignedWork: number;
  schedPendingTokens: number;
  schedSlot: number;
  schedLoadChanged: ((instance: Instance) => void) | null;
}

/** Upstream's choice: the first ACTIVE instance, in list order, with the fewest pending tokens. */
function firstActiveMinimum(instances: readonly FakeInstance[]): FakeInstance | null {
  let best: FakeInstance | null = null;
  for (const instance of instances) {
    if (instance.status !== InstanceStatus.Active) continue;
    if (best === null || instance.schedPendingTokens < best.schedPendingTokens) best = instance;
  }
  return best;
}

void describe("token_jsq", () => {
  void it("places exactly where a scan of the ACTIVE instances would, as loads, states and the fleet change", () => {
    const rng = new Rng(5);
    const scheduler = new TokenJsqScheduler(SCHEDULER_OPTIONS);
    const fleet: FakeInstance[] = [];
    let nextId = 0;
    const add = (): void => {
      const instance: FakeInstance = {
        label: `i${nextId++}`,
        status: rng.nextFloat() < 0.7 ? InstanceStatus.Active : InstanceStatus.ScalingUp,
        assignedWork: 0,
        schedPendingTokens: 0,
        schedSlot: -1,
        schedLoadChanged: null,
      };
      fleet.push(instance);
      scheduler.addInstance(instance as unknown as Instance);
    };
    for (let i = 0; i < 12; i++) add();
    let placements = 0;
    for (let step = 0; step < 5000; step++) {
      const roll = rng.nextFloat();
      if (roll < 0.5) {
        const expected = firstActiveMinimum(fleet);
        const before = expected?.schedPendingTokens ?? 0;
        const promptTokens = 1 + rng.nextInt(4);
        const placement = scheduler.schedule({ promptTokens } as SimRequest);
        if (expected === null) assert.equal(placement, null, `step ${step}: no ACTIVE instance`);
        else assert.equal(placement?.prompt, expected as unknown as Instance, `step ${step}`);
        if (expected !== null) {
          assert.equal(expected.schedPendingTokens, before + promptTokens + 1);
          placements++;
        }
      } else if (roll < 0.85) {
        // A task completes: the instance's counter drops and it tells the scheduler.
        const loaded = fleet.filter((instance) => instance.schedPendingTokens > 0);
        if (loaded.length === 0) continue;
        const instance = loaded[rng.nextInt(loaded.length)]!;
        instance.schedPendingTokens -= Math.min(instance.schedPendingTokens, 1 + rng.nextInt(3));
        instance.schedLoadChanged?.(instance as unknown as Instance);
      } else if (roll < 0.95) {
        // Scaling: an instance becomes ACTIVE, or starts draining (no notification to the scheduler).
        const instance = fleet[rng.nextInt(fleet.length)]!;
        instance.status =
          instance.status === InstanceStatus.Active ? InstanceStatus.Draining : InstanceStatus.Active;
      } else if (roll < 0.975 || fleet.length < 3) {
        add();
      } else {
        const [removed] = fleet.splice(rng.nextInt(fleet.length), 1);
        removed!.status = InstanceStatus.Removed;
        scheduler.removeInstance(removed as unknown as Instance);
      }
    }
    assert.ok(placements > 1000, `only ${placements} placements`);
  });
});

void describe("compat.ignore_instance_status", () => {
  // Two instances of each role; the least-loaded one of each is draining.
  const fleet = (): Instance[] =>
    [
      { tag: "prompt", status: InstanceStatus.Draining, schedPendingTokens: 0, schedMemory: 0 },
      { tag: "prompt", status: InstanceStatus.Active, schedPendingTokens: 50, schedMemory: 10 },
      { tag: "token", status: InstanceStatus.Draining, schedPendingTokens: 0, schedMemory: 0 },
      { tag: "token", status: InstanceStatus.Active, schedPendingTokens: 50, schedMemory: 10 },
    ].map(
      (fields, id) =>
        ({
          ...fields,
          id,
          label: `i${id}`,
          assignedWork: 0,
          schedSlot: -1,
          schedLoadChanged: null,
          pendingQueue: [],
          maxMemory: 1e12,
          kvBytesPerToken: 1,
        }) as unknown as Instance,
    );
  const request = { promptTokens: 10, outputTokens: 10 } as SimRequest;

  void it("lets mixed_pool place work on a draining instance, as upstream's KV schedulers do", () => {
    for (const ignore of [false, true]) {
      const instances = fleet();
      const scheduler = new MixedPoolScheduler({ ...SCHEDULER_OPTIONS, ignoreInstanceStatus: ignore });
      for (const instance of instances) scheduler.addInstance(instance);
      const placement = scheduler.schedule(request);
      assert.equal(placement?.prompt, instances[ignore ? 0 : 1], `ignore_instance_status: ${ignore}`);
      assert.equal(placement?.token, instances[ignore ? 2 : 3], `ignore_instance_status: ${ignore}`);
    }
  });

  void it("does not change token_jsq, which the DRL fork filters to ACTIVE instances", () => {
    const instances = fleet();
    const scheduler = new TokenJsqScheduler({ ...SCHEDULER_OPTIONS, ignoreInstanceStatus: true });
    for (const instance of instances) scheduler.addInstance(instance);
    assert.equal(scheduler.schedule(request)?.prompt, instances[1]);
  });
});
