/**
 * Properties of whole simulations on small generated workloads: conservation of requests,
 * determinism, memory accounting, every scheduler, latency lower bounds and KV-memory pressure.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadCatalog, kvBytesPerToken } from "../../src/model/catalog.ts";
import type { Instance } from "../../src/serving/instance.ts";
import { SCHEDULER_NAMES, SPLIT_SCHEDULERS } from "../../src/serving/schedulers/registry.ts";
import type { TimelineRow } from "../../src/metrics/timeline.ts";
import type { RequestRecord } from "../../src/metrics/types.ts";
import { Rng } from "../../src/core/rng.ts";
import { runSimulation, type RunResult } from "../../src/simulate/run.ts";
import { buildSetup } from "../../src/simulate/setup.ts";
import { Simulation } from "../../src/simulate/simulation.ts";
import { openConfiguredWorkload } from "../../src/simulate/workload.ts";
import { readAllRequests } from "../../src/workload/index.ts";
import {
  assertAboveUnloaded,
  assertDrained,
  assertNoOom,
  COLOCATED,
  decodeStep,
  generator,
  load,
  perfOf,
  prefillTime,
  scratchDir,
  simulate,
  SPLIT,
  writeTrace,
  type Raw,
} from "./simulation-helpers.ts";

const scratch = scratchDir("properties");

void describe("conservation", () => {
  void it("every arrived request completes when the run has no end time", () => {
    const loaded = load({ ...SPLIT, scheduler: { name: "mixed_pool" }, workload: generator(6, 300) });
    const records: number[] = [];
    const { summary, outcome } = runSimulation(loaded, { onRecord: (record) => records.push(record.id) });
    assert.equal(summary.requests.arrived, 300);
    assert.equal(summary.requests.completed, 300);
    assert.equal(summary.requests.unfinished, 0);
    assert.equal(outcome.waitingAtEnd, 0);
    assert.equal(new Set(records).size, 300, "each request completes exactly once");
  });

  void it("with end_time_s: arrived = completed + unfinished, and arrivals stop at the end time", () => {
    const end = 20;
    const raw = {
      ...COLOCATED,
      scheduler: { name: "token_jsq" },
      workload: generator(12, 1000),
      end_time_s: end,
    };
    const loaded = load(raw);
    const { summary, outcome } = runSimulation(loaded);
    const expectedArrivals = readAllRequests(openConfiguredWorkload(loaded.config, loaded.baseDir)).filter(
      (request) => request.arrival_s <= end,
    ).length;
    assert.equal(summary.requests.arrived, expectedArrivals);
    assert.equal(summary.requests.arrived, summary.requests.completed + summary.requests.unfinished);
    assert.ok(summary.requests.unfinished > 0, "the load leaves requests in flight at the end");
    assert.ok(summary.requests.completed > 0);
    assert.equal(outcome.endTime_s, end, "the run ends at the end time, with work under way");
  });

  void it("a run stopped by end_time_s bills servers and counts busy time up to the end time", () => {
    // One request at t = 1 decoding 2,000 tokens (about 70 s) on one of four co-located instances:
    // its decode is a single event far past the end time.
    const path = writeTrace(scratch, "long-decode.csv", [[1, 512, 2000]]);
    const end = 60;
    const loaded = load({
      ...COLOCATED,
      cluster: { servers: [{ sku: "dgx-h100", count: 4 }] },
      scheduler: { name: "token_jsq" },
      workload: { type: "trace", path, format: "splitwise" },
      end_time_s: end,
    });
    const { summary, outcome } = runSimulation(loaded);
    assert.equal(outcome.endTime_s, end);
    assert.equal(summary.requests.unfinished, 1);
    assert.ok(Math.abs(outcome.gpuSeconds - 4 * 8 * end) < 1e-9, `GPU-seconds ${outcome.gpuSeconds}`);
    const busy = outcome.instances.find((instance) => instance.busy_s > 0)!;
    assert.ok(Math.abs(busy.busy_s - (end - 1)) < 1e-9, `busy ${busy.busy_s} s`);
    assert.ok(Math.abs(busy.prefill_s + busy.decode_s - busy.busy_s) < 1e-9, "phases add up to busy time");
    assert.ok(busy.decode_s > 50, `decode ${busy.decode_s} s`);
    // Energy: every GPU idles for the run, and the busy instance's GPUs draw their phase's power.
    const power = loadCatalog().processors.get("h100-80gb")!.power_w;
    const expected =
      (4 * 8 * power.idle * end +
        8 * ((power.prompt - power.idle) * busy.prefill_s + (power.token - power.idle) * busy.decode_s)) /
      3.6e6;
    assert.ok(
      Math.abs(outcome.energyKwh - expected) < 1e-9 * expected,
      `${outcome.energyKwh} vs ${expected}`,
    );
  });
});

void describe("timeline", () => {
  void it("adds up to the run summary: arrivals, completions, SLO attainment and GPU-hours", () => {
    // Requests left unfinished at the end time, and an autoscaled fleet whose size changes.
    const raw = {
      ...SPLIT,
      scheduler: { name: "mixed_pool" },
      workload: generator(10, 3000),
      end_time_s: 200,
      metrics: { timeline_interval_s: 15 },
      autoscaling: {
        policy: "threshold",
        decision_interval_s: 5,
        startup_delay_s: 20,
        servers_available: { "dgx-h100": 8 },
        pools: { prefill: { min: 1, max: 4 }, decode: { min: 1, max: 4 } },
      },
    };
    const { summary, timeline, outcome } = runSimulation(load(raw), { outDir: join(scratch, "timeline") });
    assert.ok(timeline !== undefined && timeline.length === Math.ceil(outcome.endTime_s / 15));
    const sum = (pick: (row: TimelineRow) => number): number =>
      timeline.reduce((total, row) => total + pick(row), 0);
    assert.equal(
      sum((row) => row.arrived),
      summary.requests.arrived,
    );
    assert.equal(
      sum((row) => row.completed),
      summary.requests.completed,
    );
    assert.ok(summary.requests.unfinished > 0, "the run ends with requests in flight");
    const meeting = sum((row) => (row.arrived > 0 ? row.slo_attainment * row.arrived : 0));
    assert.ok(Math.abs(meeting / summary.requests.arrived - summary.slo.attainment) < 1e-12);
    const gpuHours = summary.gpu_hours ?? NaN;
    assert.ok(Math.abs(sum((row) => row.gpu_hours) - gpuHours) < 1e-9 * gpuHours);
    const fleetSizes = new Set(timeline.map((row) => row.instances));
    assert.ok(fleetSizes.size > 1, "the autoscaler changed the fleet");
    const csv = readFileSync(join(scratch, "timeline", "timeline.csv"), "utf8")
      .trimEnd()
      .split("\n");
    assert.equal(csv.length, timeline.length + 1);
  });
});

void describe("determinism", () => {
  function runTo(dir: string, raw: Raw): RunResult {
    return runSimulation(load(raw), { outDir: join(scratch, dir), writeRequests: true });
  }
  const read = (dir: string, file: string): string => readFileSync(join(scratch, dir, file), "utf8");
  const withoutWall = (dir: string): unknown => {
    const summary = JSON.parse(read(dir, "summary.json")) as Record<string, unknown>;
    assert.equal(typeof summary.wall_s, "number");
    delete summary.wall_s;
    return summary;
  };

  void it("the same config and seed give byte-identical outputs (except wall_s)", () => {
    // The random scheduler draws from the seeded stream, so the seed matters.
    const raw = { ...COLOCATED, seed: 5, scheduler: { name: "random" }, workload: generator(8, 300) };
    runTo("a", raw);
    runTo("b", structuredClone(raw));
    assert.deepEqual(withoutWall("a"), withoutWall("b"));
    const json = read("a", "summary.json");
    const other = read("b", "summary.json");
    const strip = (text: string): string => text.replace(/"wall_s": [^,\n]+/, '"wall_s": 0');
    assert.equal(strip(json), strip(other), "summary.json byte-identical apart from wall_s");
    for (const file of ["requests.csv", "instances.csv", "timeline.csv", "summary.csv"]) {
      const a = read("a", file);
      const b = read("b", file);
      if (file === "summary.csv") {
        // summary.csv carries wall_s as well; compare every other column.
        const [headerA = "", rowA = ""] = a.split("\n");
        const [, rowB = ""] = b.split("\n");
        const wall = headerA.split(",").indexOf("wall_s");
        const drop = (row: string): string[] => row.split(",").filter((_, i) => i !== wall);
        assert.deepEqual(drop(rowA), drop(rowB), file);
      } else {
        assert.equal(a, b, `${file} differs between identical runs`);
      }
    }
    assert.equal(read("a", "requests.csv").trim().split("\n").length, 301);

    runTo("c", { ...raw, seed: 6 });
    assert.notEqual(
      read("c", "requests.csv"),
      read("a", "requests.csv"),
      "another seed places requests differently",
    );
  });
});

void describe("every scheduler", () => {
  for (const name of SCHEDULER_NAMES) {
    void it(`${name} runs a small workload to completion and returns all memory`, () => {
      const split = SPLIT_SCHEDULERS.has(name);
      const loaded = load({
        ...(split ? SPLIT : COLOCATED),
        scheduler: { name },
        workload: generator(5, 200),
      });
      const { sim, finished } = simulate(loaded);
      assert.equal(sim.arrived, 200, name);
      assert.equal(sim.completed, 200, name);
      assert.equal(finished.length, 200, name);
      assertDrained(sim, name);
      assertNoOom(sim, name);
      assertAboveUnloaded(finished, perfOf(loaded, "h100-80gb"), name);
      if (split) {
        // unified_pool ships only when a pair beats co-location on its cost (queues, shipment time,
        // phase interference); on this light load co-locating always wins, as in the DRL fork.
        if (name !== "unified_pool") {
          assert.ok(
            finished.some((r) => r.kv),
            `${name}: a KV-shipping scheduler shipped no KV cache`,
          );
        }
      } else {
        assert.ok(finished.every((r) => !r.kv));
      }
      // Load counters that schedulers increment are paid back in full.
      const mixedPoolCounters = ["mixed_pool", "adaptive_mixed_pool", "all_mixed_pool", "unified_pool"];
      if (name === "token_jsq" || name === "kv_token_jsq" || mixedPoolCounters.includes(name)) {
        for (const instance of sim.cluster.instances)
          assert.equal(instance.schedPendingTokens, 0, instance.label);
      }
      if (mixedPoolCounters.includes(name)) {
        for (const instance of sim.cluster.instances)
          assert.equal(instance.schedMemory, instance.weightsBytes);
      }
    });
  }

  void it("KV-shipping schedulers are refused without a splitwise start state", () => {
    for (const name of SPLIT_SCHEDULERS) {
      assert.throws(
        () => runSimulation(load({ ...COLOCATED, scheduler: { name }, workload: generator(5, 10) })),
        /needs start_state.type: splitwise/,
      );
    }
  });
});

void describe("latency against the unloaded model", () => {
  /** Requests 60 s apart: each runs alone on an idle cluster. */
  function isolatedTrace(): string {
    const sizes: [number, number][] = [
      [4096, 32],
      [100, 2],
      [1500, 300],
      [8000, 10],
      [37, 1],
      [2048, 128],
    ];
    return writeTrace(
      scratch,
      "isolated.csv",
      sizes.map(([prompt, output], i) => [1 + 60 * i, prompt, output] as const),
    );
  }

  void it("an isolated request's TTFT is its prefill time and its TBT one decode step (co-located)", () => {
    const loaded = load({
      ...COLOCATED,
      scheduler: { name: "token_jsq" },
      workload: { type: "trace", path: isolatedTrace(), format: "splitwise" },
    });
    const model = perfOf(loaded, "h100-80gb");
    const records = new Map<number, { ttft: number; tbt: number; queue: number; nth: number }>();
    runSimulation(loaded, {
      onRecord: (r) =>
        records.set(r.id, { ttft: r.ttft_s, tbt: r.tbt_s, queue: r.queue_s, nth: r.nth_token_overhead_s }),
    });
    assert.equal(records.size, 6);
    for (const [id, [prompt, output]] of [
      [4096, 32],
      [100, 2],
      [1500, 300],
      [8000, 10],
      [37, 1],
      [2048, 128],
    ].entries()) {
      const r = records.get(id)!;
      assert.equal(r.queue, 0);
      assert.equal(r.nth, 0);
      assert.ok(Math.abs(r.ttft - prefillTime(model, prompt!)) <= 1e-12, `request ${id} TTFT ${r.ttft}`);
      const expectedTbt = output! > 1 ? decodeStep(model, 1) : 0;
      assert.ok(Math.abs(r.tbt - expectedTbt) <= 1e-12, `request ${id} TBT ${r.tbt} vs ${expectedTbt}`);
    }
  });

  void it("an isolated Splitwise request adds exactly its KV shipment (prompt tokens at 200 GiB/s)", () => {
    const loaded = load({
      ...SPLIT,
      scheduler: { name: "mixed_pool" },
      workload: { type: "trace", path: isolatedTrace(), format: "splitwise" },
    });
    const model = perfOf(loaded, "h100-80gb");
    const kvBytes = kvBytesPerToken(loadCatalog().models.get("bloom-176b")!, false);
    const { finished } = simulate(loaded);
    assert.equal(finished.length, 6);
    for (const r of finished) {
      assert.ok(Math.abs(r.ttft - prefillTime(model, r.prompt)) <= 1e-12);
      if (r.output === 1) continue;
      assert.ok(r.kv);
      const transfer = (r.prompt * kvBytes) / (200 * 2 ** 30);
      const nth = r.tokenStart - (r.arrival + r.ttft);
      assert.ok(
        Math.abs(nth - transfer) <= 1e-9,
        `request ${r.id}: nth-token overhead ${nth} vs ${transfer}`,
      );
      const decode = r.e2e - r.ttft - transfer;
      assert.ok(Math.abs(decode - (r.output - 1) * decodeStep(model, 1)) <= 1e-9, `request ${r.id} decode`);
    }
  });
});

void describe("KV-cache memory pressure", () => {
  /**
   * llama2-70b at TP2 with upstream's GQA-blind KV size (2.6 MB per token): an instance holds only
   * about 14,000 tokens of KV cache, so prompts of up to 4,000 tokens contend for it.
   */
  const SMALL_KV: Raw = {
    model: "llama2-70b",
    compat: { kv_cache_ignores_gqa: true },
    workload: {
      type: "generator",
      seed: 3,
      arrival: { process: "poisson", rate_per_s: 20 },
      lengths: {
        prompt: { dist: "uniform", min: 1000, max: 4000 },
        output: { dist: "uniform", min: 200, max: 1500 },
      },
      num_requests: 400,
    },
  };
  const SMALL_KV_SPLIT: Raw = {
    ...SMALL_KV,
    cluster: { servers: [{ sku: "dgx-h100", count: 2 }] },
    start_state: {
      type: "splitwise",
      prompt: { num_instances: 1, tensor_parallelism: 2 },
      token: { num_instances: 1, tensor_parallelism: 2, skus: ["dgx-h100"] },
    },
  };

  void it("KV shipments wait for room at full decode instances; nothing is lost or over-allocated", () => {
    const loaded = load({ ...SMALL_KV_SPLIT, scheduler: { name: "kv_round_robin" } });
    const { summary } = runSimulation(loaded);
    assert.equal(summary.requests.arrived, 400);
    assert.equal(summary.requests.completed, 400);
    const stalls = summary.extra.memory_stalls as number;
    const retries = summary.extra.kv_transfer_retries as number;
    assert.ok(stalls > 0, "prefills waited for KV memory");
    assert.ok(retries > 0, "KV shipments waited for room at the decode instance");
    const { sim } = simulate(loaded);
    assertNoOom(sim, "kv_round_robin");
    assertDrained(sim, "kv_round_robin");
    assert.ok(
      sim.cluster.instances.some((instance) => instance.peakMemory / instance.maxMemory > 0.99),
      "the KV cache was actually full",
    );
  });

  void it("decodes preempted by prefills under load still all complete", () => {
    const loaded = load({ ...COLOCATED, scheduler: { name: "token_jsq" }, workload: generator(14, 600, 2) });
    const { summary } = runSimulation(loaded);
    assert.equal(summary.requests.completed, 600);
    assert.ok(summary.preemptions > 0, "the token budget preempted running decodes");
    const { sim } = simulate(loaded);
    assertNoOom(sim, "token_jsq under load");
    assertDrained(sim, "token_jsq under load");
  });

  void it("co-located instances whose KV cache fills with prefilled requests still finish every request", () => {
    const loaded = load({
      ...SMALL_KV,
      cluster: { servers: [{ sku: "dgx-h100", count: 1 }] },
      start_state: { type: "baseline", instance: { tensor_parallelism: 2 } },
      scheduler: { name: "token_jsq" },
      workload: {
        type: "generator",
        seed: 3,
        arrival: { process: "poisson", rate_per_s: 10 },
        lengths: {
          prompt: { dist: "uniform", min: 100, max: 2000 },
          output: { dist: "uniform", min: 20, max: 800 },
        },
        num_requests: 300,
      },
    });
    const { sim } = simulate(loaded);
    assert.equal(sim.completed, sim.arrived, `${sim.arrived - sim.completed} requests never finished`);
    assertDrained(sim, "token_jsq, small KV");
  });

  void it("mixed_pool under KV pressure terminates with every request finished", () => {
    const loaded = load({ ...SMALL_KV_SPLIT, scheduler: { name: "mixed_pool" }, end_time_s: 5000 });
    const { summary } = runSimulation(loaded);
    assert.equal(summary.requests.completed, summary.requests.arrived);
  });

  void it("an upstream-compatible run that can never finish stops and reports what is left", () => {
    const loaded = load({
      ...SMALL_KV_SPLIT,
      scheduler: { name: "mixed_pool" },
      compat: { kv_cache_ignores_gqa: true, kv_memory_polling: true, kv_reserve_at_decode_start: true },
    });
    const { summary, outcome } = runSimulation(loaded);
    assert.equal(summary.requests.arrived, summary.requests.completed + summary.requests.unfinished);
    if (summary.requests.unfinished > 0) assert.equal(outcome.stalled, true);
  });

  void it("a request larger than any instance's KV cache does not block the requests behind it", () => {
    const path = writeTrace(scratch, "oversized.csv", [
      [1, 100000, 4],
      [1.5, 100, 4],
      [2.5, 100, 4],
    ]);
    const loaded = load({
      ...COLOCATED,
      cluster: { servers: [{ sku: "dgx-h100", count: 1 }] },
      scheduler: { name: "token_jsq" },
      workload: { type: "trace", path, format: "splitwise" },
    });
    const ids: number[] = [];
    runSimulation(loaded, { onRecord: (record) => ids.push(record.id) });
    assert.deepEqual(ids.sort(), [1, 2]);
  });

  void it("runs requests that arrive at t = 0 (upstream routes them before the fleet exists and crashes)", () => {
    const path = writeTrace(scratch, "at-zero.csv", [
      [0, 100, 4],
      [0, 200, 4],
      [0.5, 100, 4],
    ]);
    for (const base of [COLOCATED, SPLIT]) {
      const loaded = load({
        ...base,
        scheduler: { name: base === SPLIT ? "mixed_pool" : "token_jsq" },
        workload: { type: "trace", path, format: "splitwise" },
      });
      const { sim, finished } = simulate(loaded);
      assert.deepEqual(finished.map((r) => r.id).sort(), [0, 1, 2]);
      const first = finished.find((r) => r.id === 0)!;
      assert.equal(first.promptStart, 0);
      assertDrained(sim, "t = 0");
    }
  });

  void it("time never runs backwards (llama2-70b TP2, 40,000-token prompt)", () => {
    const path = writeTrace(scratch, "long-prompt.csv", [
      [1, 40000, 4],
      [1.5, 100, 4],
    ]);
    const loaded = load({
      model: "llama2-70b",
      cluster: { servers: [{ sku: "dgx-h100", count: 1 }] },
      start_state: { type: "baseline", instance: { tensor_parallelism: 2 } },
      scheduler: { name: "round_robin" },
      workload: { type: "trace", path, format: "splitwise" },
    });
    const records: { ttft: number; e2e: number }[] = [];
    const { summary } = runSimulation(loaded, {
      onRecord: (r) => records.push({ ttft: r.ttft_s, e2e: r.e2e_s }),
    });
    for (const r of records) assert.ok(r.ttft > 0 && r.e2e >= r.ttft, `TTFT ${r.ttft}, E2E ${r.e2e}`);
    assert.ok((summary.instance_utilization ?? 0) >= 0);
  });
});

void describe("instances", () => {
  void it("every instance of the start state gets work under round robin and stays within memory", () => {
    const loaded = load({ ...COLOCATED, scheduler: { name: "round_robin" }, workload: generator(5, 60) });
    const { sim } = simulate(loaded);
    const instances: readonly Instance[] = sim.cluster.instances;
    assert.equal(instances.length, 3);
    for (const instance of instances) {
      assert.ok(instance.busyTime > 0, `${instance.label} never ran`);
      assert.ok(instance.iterations > 0);
    }
    assertNoOom(sim, "round_robin");
  });
});

/**
 * With no starvation threshold every waiting task qualifies for the first admission pass, a
 * co-located decode included while its prefill still waits; 1-3 token outputs finish fast.
 */
const NO_STARVATION_THRESHOLD: Raw = {
  ...COLOCATED,
  start_state: { type: "baseline", instance: { max_preemptions: 0 } },
  workload: {
    ...generator(12, 400),
    lengths: {
      prompt: { dist: "uniform", min: 100, max: 3000 },
      output: { dist: "uniform", min: 1, max: 3 },
    },
  },
};

void describe("task order within a request", () => {
  void it("never runs a decode before its own prefill, even with max_preemptions 0", () => {
    const loaded = load(NO_STARVATION_THRESHOLD);
    const records: RequestRecord[] = [];
    const { summary } = runSimulation(loaded, { onRecord: (record) => records.push(record) });
    assert.equal(summary.requests.completed, 400);
    for (const record of records) {
      assert.ok(record.queue_s >= 0, `request ${record.id} started its prefill (queue ${record.queue_s})`);
      assert.ok(
        record.ttft_s > 0 && record.ttft_s <= record.e2e_s,
        `request ${record.id}: ttft ${record.ttft_s}`,
      );
    }
  });
});

void describe("instance bookkeeping", () => {
  /** After every iteration: each waiting task's pool-head flag and sibling match its request's pool, on every instance. */
  function checkPoolHeads(raw: Raw): number {
    const loaded = load(raw);
    const schedulerRng = new Rng(loaded.config.seed).fork("scheduler");
    const setup = buildSetup(loaded.config, loaded.baseDir, () => schedulerRng.nextFloat());
    let checked = 0;
    const sim = new Simulation(setup, openConfiguredWorkload(loaded.config, loaded.baseDir), {
      iteration: (instance: Instance) => {
        for (const task of instance.pendingQueue) {
          const { poolHead, poolNext, id } = task.request;
          assert.equal(task.headsPool, poolHead === task, `request ${id}`);
          const sibling = poolHead === task ? poolNext : poolHead;
          assert.equal(
            task.poolSibling,
            sibling,
            `request ${id}: the task's sibling is the other pooled task`,
          );
          checked++;
        }
        assert.equal(
          instance.pendingHeadCount,
          instance.pendingQueue.filter((task) => task.headsPool).length,
          "the count of waiting pool heads",
        );
        for (const request of instance.pendingRequests) {
          assert.equal(request.poolHead?.headsPool, true, `request ${request.id} is pending: it has a head`);
          assert.equal(request.poolHead.poolSibling, request.poolNext);
          if (request.poolNext !== null) {
            assert.equal(request.poolNext.headsPool, false);
            assert.equal(request.poolNext.poolSibling, request.poolHead);
          }
        }
      },
    });
    sim.run();
    assert.equal(sim.completed, sim.arrived);
    return checked;
  }

  void it("keeps each task's pool-head flag and pool sibling equal to its request's pool", () => {
    // Loaded enough that decodes are preempted and wait behind prefills.
    assert.ok(
      checkPoolHeads({ ...COLOCATED, scheduler: { name: "token_jsq" }, workload: generator(12, 400) }) > 100,
    );
    assert.ok(
      checkPoolHeads({ ...SPLIT, scheduler: { name: "mixed_pool" }, workload: generator(12, 400) }) > 0,
    );
    assert.ok(checkPoolHeads(NO_STARVATION_THRESHOLD) > 100);
  });
});

void describe("engine metrics", () => {
  // The vLLM-style counters and histograms each instance exports to an autoscaling observer.
  const sumOver = (instances: readonly Instance[], pick: (instance: Instance) => number): number =>
    instances.reduce((total, instance) => total + pick(instance), 0);

  void it("add up to the completed requests when an autoscaler scrapes them", () => {
    const records: RequestRecord[] = [];
    const raw = {
      ...SPLIT,
      workload: generator(8, 400),
      // A fixed-size autoscaled fleet: every instance stays, so their counters cover the whole run.
      autoscaling: {
        policy: "threshold",
        decision_interval_s: 5,
        servers_available: { "dgx-h100": 4 },
        pools: { prefill: { min: 2, max: 2 }, decode: { min: 2, max: 2 } },
      },
    };
    const { summary, autoscaling } = runSimulation(load(raw), {
      onRecord: (record) => records.push({ ...record }),
    });
    assert.ok(autoscaling !== undefined);
    const instances = autoscaling.manager.instancesOf();
    assert.equal(instances.length, 4);
    const completed = summary.requests.completed;
    assert.equal(completed, 400);
    const promptTokens = records.reduce((total, record) => total + record.prompt_tokens, 0);
    const outputTokens = records.reduce((total, record) => total + record.output_tokens, 0);
    assert.equal(
      sumOver(instances, (i) => i.engineMetrics.requestsCompleted),
      completed,
    );
    assert.equal(
      sumOver(instances, (i) => i.engineMetrics.ttft.count),
      completed,
    );
    assert.equal(
      sumOver(instances, (i) => i.engineMetrics.e2e.count),
      completed,
    );
    assert.equal(
      sumOver(instances, (i) => i.engineMetrics.promptTokens),
      promptTokens,
    );
    assert.equal(
      sumOver(instances, (i) => i.engineMetrics.generationTokens),
      outputTokens,
    );
    // Inter-token latency is observed once per decode step.
    assert.equal(
      sumOver(instances, (i) => i.engineMetrics.itl.count),
      outputTokens - completed,
    );
  });

  void it("are left empty when nothing reads them (a run without autoscaling)", () => {
    const { sim } = simulate(load({ ...SPLIT, workload: generator(8, 200) }));
    assert.equal(sim.completed, 200);
    for (const instance of sim.cluster.instances) {
      assert.equal(instance.engineMetrics.requestsCompleted, 0);
      assert.equal(instance.engineMetrics.ttft.count, 0);
    }
  });
});
