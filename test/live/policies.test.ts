/**
 * Every policy of the registry runs in live mode: built from a serve config (so `sla` gets the
 * performance model of model/gpu/tp, as in simulation), fed Observations the controller builds from
 * scraped workers and the gateway, and its targets handed to an actuator, without one error.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseServeConfigText } from "../../src/config/serve-schema.ts";
import { DEFAULT_COLLECTOR_OPTIONS, MetricsCollector } from "../../src/live/collector.ts";
import { Controller, LiveClock, type Actuator, type PoolPlan } from "../../src/live/controller.ts";
import { resolveHardware } from "../../src/live/engine/hardware.ts";
import { Gateway } from "../../src/live/gateway/gateway.ts";
import { memoryLogger, silentLogger } from "../../src/live/log.ts";
import { buildConfiguredPolicy, poolCapacityFor } from "../../src/live/serve.ts";
import { WorkerRegistry, type Worker } from "../../src/live/workers.ts";
import { listPolicies } from "../../src/policy/registry.ts";
import { FakeWorker } from "./helpers.ts";

const PAGE = [
  'vllm:num_requests_running{model_name="m"} 6',
  'vllm:num_requests_waiting{model_name="m"} 3',
  'vllm:kv_cache_usage_perc{model_name="m"} 0.7',
  'vllm:prompt_tokens_total{model_name="m"} 50000',
  'vllm:generation_tokens_total{model_name="m"} 9000',
  'vllm:request_success_total{model_name="m",finished_reason="length"} 60',
  'splitscale:gpu_utilization_perc{model_name="m"} 95',
  'splitscale:pending_prefill_tokens{model_name="m"} 4000',
  ...[0.1, 0.5, 1, Infinity].map(
    (le, i) =>
      `vllm:time_to_first_token_seconds_bucket{model_name="m",le="${le === Infinity ? "+Inf" : le}"} ${[10, 40, 55, 60][i]}`,
  ),
  'vllm:time_to_first_token_seconds_count{model_name="m"} 60',
  'vllm:time_to_first_token_seconds_sum{model_name="m"} 20',
  ...[0.02, 0.05, Infinity].map(
    (le, i) =>
      `vllm:inter_token_latency_seconds_bucket{model_name="m",le="${le === Infinity ? "+Inf" : le}"} ${[5000, 8900, 9000][i]}`,
  ),
  'vllm:inter_token_latency_seconds_count{model_name="m"} 9000',
  'vllm:inter_token_latency_seconds_sum{model_name="m"} 250',
  "",
].join("\n");

class RecordingActuator implements Actuator {
  readonly kind = "process" as const;
  readonly calls: { pool: string; target: number }[] = [];
  constructor(private readonly registry: WorkerRegistry) {}
  start(): Promise<void> {
    return Promise.resolve();
  }
  desired(pool: string): number {
    return this.registry.live(pool).length;
  }
  reconcile(pool: string, target: number): Promise<number> {
    this.calls.push({ pool, target });
    return Promise.resolve(this.desired(pool));
  }
  metricsUrl(worker: Worker): string | undefined {
    return `${worker.url}/metrics`;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

void describe("every registered policy drives the live control loop", () => {
  const workers: FakeWorker[] = [];
  before(async () => {
    for (let i = 0; i < 2; i++) {
      const worker = await new FakeWorker().start();
      worker.metricsPage = PAGE;
      workers.push(worker);
    }
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
  });

  const configs: Record<string, string> = {
    hpa: "{ pools: { mixed: { metrics: [{ type: pods, metric: concurrent_requests, target_average_value: 4 }] } } }",
  };

  /** Policies that cannot run on defaults here, and why. */
  const skipped: Record<string, string> = { rl: "needs a trained checkpoint (policy_config.checkpoint)" };

  for (const entry of listPolicies()) {
    void it(entry.name, { skip: skipped[entry.name] ?? false }, async () => {
      const loaded = parseServeConfigText(
        `autoscaling: { policy: ${entry.name}, policy_config: ${configs[entry.name] ?? "{}"} }\npools: { mixed: { min: 1, max: 6, startup_delay_s: 30 } }\n`,
        `${entry.name}.yaml`,
        process.cwd(),
      );
      const hardware = resolveHardware({ model: "llama2-70b", gpu: "h100", tp: 8 });
      const pool = loaded.config.pools.mixed!;
      const plan: PoolPlan = {
        name: "mixed",
        role: "mixed",
        min: 1,
        max: 6,
        capacity: poolCapacityFor(loaded.config, hardware, pool),
      };
      const policy = buildConfiguredPolicy(loaded, {
        source: loaded.source,
        pools: [{ ...plan, latency: hardware.perf }],
      });
      const registry = new WorkerRegistry();
      workers.forEach((w, i) => registry.add({ id: `w${i}`, pool: "mixed", url: w.url, phase: "ready" }));
      registry.add({ id: "starting", pool: "mixed", phase: "starting" });
      const gateway = new Gateway(registry, {
        servedModelName: "m",
        queueMaxSize: 10,
        queueTimeout_s: 10,
        requestTimeout_s: 10,
        retries: 1,
        strategy: "least_loaded",
        maxConcurrencyPerWorker: 1,
        defaultMaxTokens: 16,
        startupDelay_s: 30,
        log: silentLogger,
        capacityPossible: () => true,
      });
      gateway.stats.arrivals = 40;
      gateway.stats.promptTokens = 40_000;
      const actuator = new RecordingActuator(registry);
      const log = memoryLogger();
      let now = Date.now();
      const clock = new LiveClock(1, () => now);
      const controller = new Controller({
        clock,
        registry,
        collector: new MetricsCollector(DEFAULT_COLLECTOR_OPTIONS, log, () => now),
        gateway,
        actuator,
        pools: () => new Map([["mixed", plan]]),
        units: () => [{ name: "default", fingerprint: "x", pools: ["mixed"], build: () => policy }],
        scrapeInterval_s: 1,
        log,
      });
      controller.syncUnits();
      for (let tick = 0; tick < 4; tick++) {
        now += policy.interval_s * 1000;
        gateway.stats.arrivals += 20;
        gateway.stats.promptTokens += 20_000;
        gateway.stats.completions += 18;
        gateway.stats.outputTokens += 2_700;
        await controller.tickNow();
      }
      const ticks = controller.lastTick();
      assert.equal(ticks.length, 1);
      assert.equal(ticks[0]!.error, undefined, `${entry.name} threw: ${ticks[0]!.error}`);
      assert.equal(ticks[0]!.policy, policy.name);
      assert.ok(ticks[0]!.reasons.length > 0, "the policy explains itself");
      assert.ok(!log.lines.some((line) => / ERROR /.test(line)), log.lines.join("\n"));
      assert.equal(controller.decisionsMade, 4);
      await controller.stop();
    });
  }
});
