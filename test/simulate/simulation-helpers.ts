/**
 * Helpers for tests that run whole simulations: small fleets, a direct Simulation run that keeps
 * every finished request's timestamps, splitwise-format trace files, and the invariants every
 * finished run must hold (nothing left queued or allocated, no memory overflow).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after } from "node:test";
import { validateConfig, type LoadedConfig } from "../../src/config/config.ts";
import { Rng } from "../../src/core/rng.ts";
import type { IterationTimeModel } from "../../src/model/performance.ts";
import type { SimRequest } from "../../src/serving/request.ts";
import type { SchedulerOptions } from "../../src/serving/schedulers/scheduler.ts";
import { buildSetup, performanceModelFor } from "../../src/simulate/setup.ts";
import { Simulation } from "../../src/simulate/simulation.ts";
import { openConfiguredWorkload } from "../../src/simulate/workload.ts";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const AZURE_CONV = "data/traces/azure-llm-2023/AzureLLMInferenceTrace_conv.csv";

export type Raw = Record<string, unknown>;

/** Scheduler options at their defaults (200 GB/s KV shipments, mixed_pool borrows), for unit tests. */
export const SCHEDULER_OPTIONS: SchedulerOptions = {
  transferBandwidthGBps: 200,
  promptMaxPendingBatchTokens: 8192,
  onSaturation: "borrow",
  kvTokenJsqUpstream: false,
  ignoreInstanceStatus: false,
  maxRequestsPerInstance: 0,
  random: () => 0,
};

/** A temporary directory removed when the test file's tests are done. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `splitscale-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const SPLITWISE_TRACE_HEADER =
  "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size";

/** A splitwise-format trace of `[arrival_s, prompt_tokens, output_tokens]` rows (ids 0, 1, ...). */
export function writeTrace(
  dir: string,
  name: string,
  rows: readonly (readonly [number, number, number])[],
): string {
  const path = join(dir, name);
  const lines = rows.map(([arrival, prompt, output], id) => `${id},2,0,${arrival},1,${prompt},${output}`);
  writeFileSync(path, `${[SPLITWISE_TRACE_HEADER, ...lines].join("\n")}\n`);
  return path;
}

/** Poisson arrivals with Azure conversation lengths (prompt/output pairs kept together). */
export function generator(rate_per_s: number, num_requests: number, seed = 1): Raw {
  return {
    type: "generator",
    seed,
    arrival: { process: "poisson", rate_per_s },
    lengths: { from_trace: AZURE_CONV },
    num_requests,
  };
}

export const COLOCATED: Raw = {
  model: "bloom-176b",
  cluster: { servers: [{ sku: "dgx-h100", count: 3 }] },
  start_state: { type: "baseline" },
};

export const SPLIT: Raw = {
  model: "bloom-176b",
  cluster: { servers: [{ sku: "dgx-h100", count: 4 }] },
  start_state: {
    type: "splitwise",
    prompt: { num_instances: 2 },
    token: { num_instances: 2, skus: ["dgx-h100"] },
  },
};

export function load(raw: Raw): LoadedConfig {
  return { config: validateConfig(raw, "properties.test"), baseDir: REPO_ROOT, source: "properties.test" };
}

export interface Finished {
  readonly id: number;
  readonly prompt: number;
  readonly output: number;
  readonly arrival: number;
  readonly promptStart: number;
  readonly ttft: number;
  readonly e2e: number;
  readonly tokenStart: number;
  readonly kv: boolean;
}

/** Runs a Simulation directly (as runSimulation does) to inspect instances after the run. */
export function simulate(loaded: LoadedConfig): { sim: Simulation; finished: Finished[] } {
  const schedulerRng = new Rng(loaded.config.seed).fork("scheduler");
  const setup = buildSetup(loaded.config, loaded.baseDir, () => schedulerRng.nextFloat());
  const finished: Finished[] = [];
  const sim = new Simulation(setup, openConfiguredWorkload(loaded.config, loaded.baseDir), {
    requestCompleted: (request: SimRequest, now: number) =>
      finished.push({
        id: request.id,
        prompt: request.promptTokens,
        output: request.outputTokens,
        arrival: request.arrivalTime,
        promptStart: request.promptStartTime,
        ttft: request.firstTokenTime - request.arrivalTime,
        e2e: now - request.arrivalTime,
        tokenStart: request.token.startTime,
        kv: request.kvTransfer !== null,
      }),
  });
  sim.run();
  return { sim, finished };
}

/** Every instance is back to its weights with nothing queued, running or assigned. */
export function assertDrained(sim: Simulation, where: string): void {
  assert.equal(sim.waitingCount, 0, `${where}: requests still held at the scheduler`);
  for (const instance of sim.cluster.instances) {
    const name = `${where}: ${instance.label}`;
    assert.equal(instance.memory, instance.weightsBytes, `${name} memory is not back to weights only`);
    assert.equal(instance.batch.length, 0, `${name} batch`);
    assert.equal(instance.pendingQueue.length, 0, `${name} pending queue`);
    assert.equal(instance.pendingPromptQueue.length, 0, `${name} pending prompts`);
    assert.equal(instance.blockedQueue.length, 0, `${name} blocked queue`);
    assert.equal(instance.pendingRequests.length, 0, `${name} pending requests`);
    assert.equal(instance.pendingTokens, 0, `${name} pending tokens`);
    assert.equal(instance.assignedWork, 0, `${name} assigned work`);
    assert.equal(instance.outstandingPrefillTokens, 0, `${name} outstanding prefill tokens`);
  }
}

/** No out-of-memory: the KV cache never exceeded what the GPUs hold. */
export function assertNoOom(sim: Simulation, where: string): void {
  for (const instance of sim.cluster.instances) {
    assert.ok(
      instance.peakMemory <= instance.maxMemory,
      `${where}: ${instance.label} peaked at ${instance.peakMemory} > ${instance.maxMemory}`,
    );
    assert.ok(instance.peakMemory >= instance.weightsBytes);
  }
}

export function perfOf(loaded: LoadedConfig, hardware: string, tp = 8): IterationTimeModel {
  return performanceModelFor(loaded.config, loaded.baseDir).forInstance(loaded.config.model, hardware, tp);
}

export const prefillTime = (model: IterationTimeModel, tokens: number): number =>
  model.iterationTime({ prefillTokens: tokens, numPrefill: 1, numDecode: 0, decodeContextTokens: 0 });
export const decodeStep = (model: IterationTimeModel, tasks: number): number =>
  model.iterationTime({ prefillTokens: 0, numPrefill: 0, numDecode: tasks, decodeContextTokens: 0 });

/**
 * Lower bounds that hold for bloom-176b on H100 at TP8, whose prefill and decode curves both increase
 * with batch tokens: TTFT is at least the prompt's prefill alone, and every decode step takes at least
 * a batch-of-one step (mixed batches cost more).
 */
export function assertAboveUnloaded(
  finished: readonly Finished[],
  model: IterationTimeModel,
  where: string,
): void {
  const step = decodeStep(model, 1);
  const slack = 1 + 1e-12;
  for (const r of finished) {
    const name = `${where}: request ${r.id}`;
    assert.ok(r.promptStart >= r.arrival, `${name} started before it arrived`);
    assert.ok(r.ttft * slack >= prefillTime(model, r.prompt), `${name} TTFT ${r.ttft} below unloaded`);
    assert.ok(r.tokenStart * slack >= r.arrival + r.ttft, `${name} decode started before the first token`);
    if (r.output > 1) {
      const tbt = (r.e2e - r.ttft) / (r.output - 1);
      assert.ok(tbt * slack >= step, `${name} TBT ${tbt} below one decode step ${step}`);
    } else {
      assert.ok(
        Math.abs(r.e2e - r.ttft) <= 1e-12 * r.e2e,
        `${name}: a 1-token request ends at its first token`,
      );
    }
  }
}
