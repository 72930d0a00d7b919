/**
 * End to end on loopback with seed 003's MatrixInfer YAML, verbatim, as `autoscaling.policy_file`:
 * Kthena scales on gpu_utilization (target 80 %) and concurrent_requests (target 50) read from the
 * emulated engines' /metrics. The binding's minReplicas 2 lifts the fleet from 1 to 2; a burst keeps
 * the GPUs busy and panic mode (3/2 >= 150 %) scales to 3 (the pool's max); when the load stops,
 * the fleet returns to 2 after the scale-down stabilization window and the panic hold. Policy time
 * runs 60x (`autoscaling.time_scale`): the 15 s tick is 0.25 s, the 3 min window 3 s, the 5 min
 * panic hold 5 s. Every request is answered completely or with a clear 429/503.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { parseServeConfigText } from "../../src/config/serve-schema.ts";
import { memoryLogger } from "../../src/live/log.ts";
import { startServe, type ServeHandle } from "../../src/live/serve.ts";
import { GAUGES } from "../../src/policy/types.ts";
import { assertAccounted, burst, servedByWorkers } from "./e2e-helpers.ts";
import { waitFor } from "./helpers.ts";

const SEED = fileURLToPath(new URL("./fixtures/seed-003-smart-scaling.yaml", import.meta.url));

const CONFIG = `
name: kthena-e2e
listen: { port: 0 }
pools: { mixed: { min: 1, max: 3, startup_delay_s: 2 } }
routing: { max_concurrency_per_worker: 3 }
queue: { max_size: 60, timeout_s: 30 }
actuator:
  type: process
  engine: { time_scale: 5, load_delay_s: 0.3 }
  stop_timeout_s: 3
autoscaling:
  policy_file: ${SEED}
  time_scale: 60
  scrape_interval_s: 0.2
`;

void describe("serve + process actuator + kthena from seed 003's YAML", () => {
  let handle: ServeHandle;
  const log = memoryLogger();

  void before(async () => {
    handle = await startServe(parseServeConfigText(CONFIG, "kthena-e2e.yaml", process.cwd()), { log });
  });
  void after(async () => {
    await handle?.close();
  });

  void it("lifts to minReplicas, scales up on busy GPUs, answers everyone, and returns to minReplicas", async () => {
    assert.deepEqual(handle.controller!.policyNames(), ["kthena"]);
    await waitFor("the binding's minReplicas 2", () => handle.registry.routable().length === 2, 20_000);

    let maxReady = 0;
    let maxGpu = 0;
    const sampler = setInterval(() => {
      maxReady = Math.max(maxReady, handle.registry.routable().length);
      for (const worker of handle.registry.routable())
        maxGpu = Math.max(maxGpu, handle.collector.metricsFor(worker.id)?.gauges[GAUGES.gpuUtilization] ?? 0);
    }, 50);
    const results = await burst(handle.url, 90, 15, 60);
    clearInterval(sampler);

    const { complete } = assertAccounted(handle, results);
    assert.ok(maxGpu > 80, `the engines reported busy GPUs (max ${maxGpu.toFixed(0)} %)`);
    assert.equal(maxReady, 3, "scaled up to the pool's max");
    assert.equal(servedByWorkers(handle), complete, "each completed request served once");
    const up = handle.controller!.decisions(100).find((d) => d.from === 2 && d.to === 3);
    assert.ok(up !== undefined, "a 2 → 3 decision");
    assert.match(up.reasons.join(" "), /gpu_utilization/);

    await waitFor(
      "back to minReplicas 2",
      () =>
        handle.registry.live("mixed").filter((w) => w.phase === "ready").length === 2 &&
        handle.registry.live("mixed").length === 2,
      30_000,
    );
    const down = handle
      .controller!.decisions(100)
      .filter((d) => d.to < d.from)
      .at(-1);
    assert.ok(down !== undefined && down.to === 2);
  });
});
