/**
 * Scheduler choices on hand-built fleets (only the fields the schedulers read), beyond the
 * run-to-completion checks in properties.test.ts: the KV schedulers' load counters, the
 * overlap/ethernet bandwidths, adaptive_mixed_pool's rebalancing between pools, and the DRL fork's
 * all_mixed_pool and unified_pool.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InstanceStatus, type Instance } from "../../src/serving/instance.ts";
import type { SimRequest } from "../../src/serving/request.ts";
import { AllMixedPoolScheduler, UnifiedPoolScheduler } from "../../src/serving/schedulers/drl.ts";
import { AdaptiveMixedPoolScheduler } from "../../src/serving/schedulers/mixed-pool.ts";
import { createScheduler } from "../../src/serving/schedulers/registry.ts";
import {
  JsqScheduler,
  RandomScheduler,
  RoundRobinScheduler,
} from "../../src/serving/schedulers/colocated.ts";
import type { RequestScheduler } from "../../src/serving/schedulers/scheduler.ts";
import { SCHEDULER_OPTIONS } from "./simulation-helpers.ts";

function fakeInstance(id: number, tag: "prompt" | "token"): Instance {
  return {
    id,
    tag,
    label: `${tag}_${id}`,
    status: InstanceStatus.Active,
    assignedWork: 0,
    schedPendingTokens: 0,
    schedMemory: 0,
    schedSlot: -1,
    schedLoadChanged: null,
    pendingQueue: [],
    pendingPromptQueue: [],
    pendingRequests: [],
    promptTasksInBatch: 0,
    tokenTasksInBatch: 0,
    maxMemory: 1e15,
    kvBytesPerToken: 1,
  } as unknown as Instance;
}

/** Two prompt and two token instances added to `scheduler`, prompts first. */
function fleetOf(scheduler: RequestScheduler): Instance[] {
  const instances = [
    fakeInstance(0, "prompt"),
    fakeInstance(1, "prompt"),
    fakeInstance(2, "token"),
    fakeInstance(3, "token"),
  ];
  for (const instance of instances) scheduler.addInstance(instance);
  return instances;
}

const request = (promptTokens: number): SimRequest => ({ promptTokens, outputTokens: 10 }) as SimRequest;

void describe("kv_token_jsq", () => {
  void it("counts the tokens it places, so consecutive requests spread over both pools", () => {
    const scheduler = createScheduler("kv_token_jsq", SCHEDULER_OPTIONS, "test");
    const [p0, p1, t0, t1] = fleetOf(scheduler);
    const first = scheduler.schedule(request(100))!;
    const second = scheduler.schedule(request(100))!;
    assert.deepEqual([first.prompt, first.token], [p0, t0]);
    assert.deepEqual([second.prompt, second.token], [p1, t1]);
    assert.equal(p0!.schedPendingTokens, 100);
    assert.equal(t0!.schedPendingTokens, 1);
    assert.equal(scheduler.transferBandwidth, 200 * 1024 ** 3);
  });

  void it("with kv_token_jsq_upstream never counts (every request lands on the first instances) and ships 10x faster", () => {
    const scheduler = createScheduler(
      "kv_token_jsq",
      { ...SCHEDULER_OPTIONS, kvTokenJsqUpstream: true },
      "test",
    );
    const [p0, , t0] = fleetOf(scheduler);
    for (let i = 0; i < 3; i++) {
      const placement = scheduler.schedule(request(100))!;
      assert.deepEqual([placement.prompt, placement.token], [p0, t0], `request ${i}`);
    }
    assert.equal(p0!.schedPendingTokens, 0);
    assert.equal(scheduler.transferBandwidth, 2000 * 1024 ** 3);
  });
});

void describe("KV shipment bandwidth by scheduler", () => {
  const expected: Record<string, number> = {
    kv_round_robin: 200,
    kv_round_robin_ethernet: 12.5,
    kv_jsq: 200,
    overlap_kv_jsq: 2000,
    kv_token_jsq: 200,
    overlap_kv_token_jsq: 2000,
    mixed_pool: 200,
  };
  for (const [name, gbps] of Object.entries(expected)) {
    void it(`${name}: ${gbps} GB/s`, () => {
      assert.equal(createScheduler(name, SCHEDULER_OPTIONS, "test").transferBandwidth, gbps * 1024 ** 3);
    });
  }
});

void describe("adaptive_mixed_pool", () => {
  /** Feeds `count` completions with these slowdowns, then places one request (which rebalances first). */
  const after = (
    scheduler: AdaptiveMixedPoolScheduler,
    ttftSlowdown: number,
    tbtSlowdown: number,
    count = 3,
  ): void => {
    for (let i = 0; i < count; i++) scheduler.observeCompletion(ttftSlowdown, tbtSlowdown);
    scheduler.schedule(request(100));
  };

  void it("moves a token instance into the prompt pool when prefills are the bottleneck", () => {
    const scheduler = new AdaptiveMixedPoolScheduler(SCHEDULER_OPTIONS);
    const [p0, p1, t0, t1] = fleetOf(scheduler);
    after(scheduler, 12, 1.1);
    assert.deepEqual(scheduler.promptInstances, [p0, p1, t0]);
    assert.deepEqual(scheduler.tokenInstances, [t1]);
    // The last instance of a pool never moves, however unbalanced.
    after(scheduler, 12, 1.1);
    assert.deepEqual(scheduler.tokenInstances, [t1]);
  });

  void it("moves a prompt instance into the token pool when decodes are the bottleneck", () => {
    const scheduler = new AdaptiveMixedPoolScheduler(SCHEDULER_OPTIONS);
    const [p0, p1, t0, t1] = fleetOf(scheduler);
    p0!.schedPendingTokens = 500; // the least-loaded prompt instance (p1) is the one that moves
    after(scheduler, 1, 9);
    assert.deepEqual(scheduler.promptInstances, [p0]);
    assert.deepEqual(scheduler.tokenInstances, [t0, t1, p1]);
  });

  void it("leaves the pools alone while the slowdowns are within the ratio threshold (5) or unknown", () => {
    const scheduler = new AdaptiveMixedPoolScheduler(SCHEDULER_OPTIONS);
    const [p0, p1, t0, t1] = fleetOf(scheduler);
    scheduler.schedule(request(100)); // no completions yet
    after(scheduler, 4.9, 1);
    after(scheduler, 1, 4.9);
    assert.deepEqual(scheduler.promptInstances, [p0, p1]);
    assert.deepEqual(scheduler.tokenInstances, [t0, t1]);
  });

  void it("decides on the median of the completions since the last placement", () => {
    const scheduler = new AdaptiveMixedPoolScheduler(SCHEDULER_OPTIONS);
    const [, , t0] = fleetOf(scheduler);
    // Two of three completions are balanced: the median is, so nothing moves.
    scheduler.observeCompletion(100, 1);
    scheduler.observeCompletion(1, 1);
    scheduler.observeCompletion(1, 1);
    scheduler.schedule(request(100));
    assert.ok(scheduler.tokenInstances.includes(t0!));
  });
});

void describe("all_mixed_pool", () => {
  void it("puts every instance in one mixed pool: prefill on the fewest pending tokens, decode on the least memory", () => {
    const scheduler = new AllMixedPoolScheduler(SCHEDULER_OPTIONS);
    const [p0, p1, t0, t1] = fleetOf(scheduler);
    assert.deepEqual(scheduler.mixedInstances, [p0, p1, t0, t1]);
    p0!.schedPendingTokens = 10;
    p1!.schedMemory = 5; // t0 has the least memory among the others; p1 the fewest pending tokens
    p0!.schedMemory = 5;
    const placement = scheduler.schedule(request(100))!;
    assert.equal(placement.prompt, p1);
    assert.equal(placement.token, t0);
    // An idle instance is not sent back to a role pool.
    scheduler.notifyFreeInstance(t0!);
    assert.deepEqual(scheduler.mixedInstances, [p0, p1, t0, t1]);
  });

  void it("co-locates on the instance with the fewest pending tokens when its prompt queue is long", () => {
    const scheduler = new AllMixedPoolScheduler(SCHEDULER_OPTIONS);
    const instances = fleetOf(scheduler);
    for (const instance of instances) {
      instance.schedPendingTokens = 8000;
      (instance.pendingQueue as unknown[]).push({});
    }
    instances[2]!.schedPendingTokens = 7999;
    const placement = scheduler.schedule(request(500))!;
    assert.equal(placement.prompt, instances[2]);
    assert.equal(placement.token, instances[2]);
  });
});

void describe("unified_pool", () => {
  void it("co-locates on an idle instance: shipping a KV cache only adds cost there", () => {
    const scheduler = new UnifiedPoolScheduler(SCHEDULER_OPTIONS);
    const instances = fleetOf(scheduler);
    for (const instance of instances.slice(0, 3)) instance.tokenTasksInBatch = 4;
    const placement = scheduler.schedule(request(1000))!;
    assert.equal(placement.prompt, instances[3]);
    assert.equal(placement.token, instances[3]);
  });

  void it("prefills away from decode work and ships when the idle instance cannot hold the decode", () => {
    const scheduler = new UnifiedPoolScheduler(SCHEDULER_OPTIONS);
    const [a, b, c, d] = fleetOf(scheduler);
    for (const busy of [b, c, d]) busy!.tokenTasksInBatch = 4;
    b!.pendingRequests.length = 0;
    c!.pendingRequests.push({} as SimRequest, {} as SimRequest); // longer queues cost more
    d!.pendingRequests.push({} as SimRequest, {} as SimRequest);
    // a is free of decode work but has room for the prompt's cache only (1,001 tokens), not the output.
    a!.schedMemory = a!.maxMemory - 1001;
    const placement = scheduler.schedule(request(1000))!;
    assert.equal(placement.prompt, a);
    assert.equal(placement.token, b);
    assert.equal(a!.schedPendingTokens, 1000);
    assert.equal(b!.schedPendingTokens, 1);
  });

  void it("holds the request when no pair has the memory for it", () => {
    const scheduler = new UnifiedPoolScheduler(SCHEDULER_OPTIONS);
    for (const instance of fleetOf(scheduler)) instance.schedMemory = instance.maxMemory - 500;
    assert.equal(scheduler.schedule(request(1000)), null);
  });
});

/** `count` placements' prompt and token instance ids. */
function placements(scheduler: RequestScheduler, count: number): [number, number][] {
  return Array.from({ length: count }, () => {
    const placement = scheduler.schedule(request(10))!;
    return [placement.prompt.id, placement.token.id] as [number, number];
  });
}

void describe("co-located and KV choice rules (spec §3.2, §3.3)", () => {
  void it("round_robin cycles through the instances in order, skipping those not ACTIVE", () => {
    const scheduler = new RoundRobinScheduler(SCHEDULER_OPTIONS);
    const instances = fleetOf(scheduler);
    assert.deepEqual(
      placements(scheduler, 5).map(([prompt]) => prompt),
      [0, 1, 2, 3, 0],
    );
    instances[2]!.status = InstanceStatus.Draining;
    assert.deepEqual(
      placements(scheduler, 3).map(([prompt]) => prompt),
      [1, 3, 0],
    );
  });

  void it("jsq takes the instance with the fewest requests on it, the first on ties", () => {
    const scheduler = new JsqScheduler(SCHEDULER_OPTIONS);
    const instances = fleetOf(scheduler);
    for (const [i, count] of [3, 1, 1, 2].entries())
      for (let k = 0; k < count; k++) (instances[i]!.pendingRequests as unknown[]).push({});
    const [placement] = placements(scheduler, 1);
    assert.deepEqual(placement, [1, 1]);
  });

  void it("random draws uniformly from the ACTIVE instances with the run's seeded stream", () => {
    const draws = [0, 0.34, 0.67, 0.99];
    let next = 0;
    const scheduler = new RandomScheduler({ ...SCHEDULER_OPTIONS, random: () => draws[next++]! });
    const instances = fleetOf(scheduler);
    instances[1]!.status = InstanceStatus.ScalingUp;
    // Usable: 0, 2, 3; a draw u picks index floor(u * 3).
    assert.deepEqual(
      placements(scheduler, 4).map(([prompt]) => prompt),
      [0, 2, 3, 3],
    );
  });

  void it("kv_round_robin cycles each pool on its own; kv_jsq takes each pool's shortest queue", () => {
    const roundRobin = createScheduler("kv_round_robin", SCHEDULER_OPTIONS, "test");
    fleetOf(roundRobin);
    assert.deepEqual(placements(roundRobin, 3), [
      [0, 2],
      [1, 3],
      [0, 2],
    ]);
    const jsq = createScheduler("kv_jsq", SCHEDULER_OPTIONS, "test");
    const instances = fleetOf(jsq);
    (instances[0]!.pendingRequests as unknown[]).push({});
    (instances[3]!.pendingRequests as unknown[]).push({}, {});
    assert.deepEqual(placements(jsq, 1), [[1, 2]]);
  });

  void it("adaptive_mixed_pool keeps to ACTIVE instances even with compat.ignore_instance_status (as the fork)", () => {
    const scheduler = new AdaptiveMixedPoolScheduler({ ...SCHEDULER_OPTIONS, ignoreInstanceStatus: true });
    const instances = fleetOf(scheduler);
    instances[0]!.status = InstanceStatus.Draining;
    instances[2]!.status = InstanceStatus.Draining;
    assert.deepEqual(placements(scheduler, 1), [[1, 3]]);
  });
});
