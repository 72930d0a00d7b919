/**
 * Batch admission on whole simulations: ORCA's first-come-first-served batches (no token budget, no
 * preemption, head-of-line memory blocking), and requests held at the scheduler, which must be
 * placed as soon as room appears.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateConfig, type LoadedConfig } from "../../src/config/config.ts";
import {
  assertDrained,
  assertNoOom,
  COLOCATED,
  load,
  perfOf,
  prefillTime,
  scratchDir,
  simulate,
  writeTrace,
  type Finished,
  type Raw,
} from "./simulation-helpers.ts";

const scratch = scratchDir("batching");

void describe("ORCA batching", () => {
  const trace = (name: string, rows: readonly (readonly [number, number, number])[]): string =>
    writeTrace(scratch, name, rows);
  const oneInstance = (path: string, instance: Raw, type = "orca"): LoadedConfig =>
    load({
      ...COLOCATED,
      cluster: { servers: [{ sku: "dgx-h100", count: 1 }] },
      start_state: { type, instance },
      scheduler: { name: "round_robin" },
      workload: { type: "trace", path, format: "splitwise" },
    });
  /** Most requests in flight (prefill started, not finished) at any moment. */
  const maxConcurrent = (finished: readonly Finished[]): number => {
    let most = 0;
    for (const r of finished) {
      const running = finished.filter(
        (o) => o.promptStart <= r.promptStart && r.promptStart < o.arrival + o.e2e,
      ).length;
      most = Math.max(most, running);
    }
    return most;
  };

  void it("admits requests first come first served up to max_batch_size, with no token budget and no preemption", () => {
    // Five 3,000-token prompts, each arriving while earlier decodes run: over Splitwise batching's
    // 2,048-token budget, so there a new prefill preempts the running decodes; ORCA runs them whole,
    // two at a time, and the later ones wait for a slot.
    const path = trace(
      "orca-fcfs.csv",
      [0, 1, 2, 3, 4].map((i) => [1 + 0.5 * i, 3000, 50] as const),
    );
    const orca = simulate(oneInstance(path, { max_batch_size: 2 }));
    assert.equal(orca.sim.cluster.instances[0]!.batching.kind, "orca");
    assert.equal(orca.finished.length, 5);
    assertDrained(orca.sim, "orca");
    assert.equal(orca.sim.cluster.instances[0]!.preemptions, 0);
    assert.equal(maxConcurrent(orca.finished), 2);
    assert.ok(
      orca.finished.some((r) => r.promptStart > r.arrival),
      "the batch-size limit made a request wait",
    );
    const byStart = [...orca.finished].sort((a, b) => a.promptStart - b.promptStart).map((r) => r.id);
    assert.deepEqual(byStart, [0, 1, 2, 3, 4]);
    const splitwise = simulate(oneInstance(path, { max_batch_size: 2 }, "baseline"));
    assert.equal(splitwise.sim.cluster.instances[0]!.batching.kind, "splitwise");
    assert.ok(splitwise.sim.cluster.instances[0]!.preemptions > 0, "Splitwise batching preempts here");
  });

  void it("start_state orca keeps ORCA batching when other instance settings are given", () => {
    const config = validateConfig(
      { start_state: { type: "orca", instance: { max_batch_size: 64 } } },
      "orca.yaml",
    );
    assert.equal(config.start_state.type === "orca" && config.start_state.instance.batching, "orca");
    assert.throws(
      () =>
        validateConfig({ start_state: { type: "orca", instance: { batching: "splitwise" } } }, "orca.yaml"),
      /orca\.yaml: start_state\.instance\.batching: the orca start state runs ORCA batching/,
    );
  });

  void it("stops at the first waiting request whose KV cache does not fit: a small one behind it waits too", () => {
    const probe = simulate(oneInstance(trace("orca-probe.csv", [[1, 10, 2]]), {}));
    const capacity = probe.sim.cluster.maxKvTokens;
    // Requests 0 and 1 each need 60 % of the KV cache, so 1 waits for 0 to finish; request 2 would
    // fit next to 0 but arrives after 1 and must not overtake it.
    const big = Math.floor(capacity * 0.3);
    const path = trace("orca-memory.csv", [
      [1, big, big],
      [1.5, big, big],
      [2, 100, 10],
    ]);
    const { sim, finished } = simulate(oneInstance(path, {}));
    assertDrained(sim, "orca memory");
    assertNoOom(sim, "orca memory");
    const byId = [...finished].sort((a, b) => a.id - b.id);
    const firstDone = byId[0]!.arrival + byId[0]!.e2e;
    assert.ok(byId[1]!.promptStart >= firstDone, "request 1 waits for request 0's memory");
    assert.ok(byId[2]!.promptStart >= byId[1]!.promptStart, "request 2 does not overtake request 1");
  });
});

void describe("requests held at the scheduler", () => {
  // Two 4,096-token prompts fill mixed_pool's prompt queue (8,192 pending tokens), so requests 2-5
  // are held. Their room comes back when a prefill finishes (well under a second), while the first
  // request only finishes after about 70 s of decoding: a held request must not wait for that.
  const burst = (): string =>
    writeTrace(
      scratch,
      "held-burst.csv",
      [0, 1, 2, 3, 4, 5].map((id) => [1 + id / 100, 4096, 2000] as const),
    );
  for (const onSaturation of ["queue", "hold"] as const) {
    void it(`on_saturation: ${onSaturation} places a held request when a prefill frees the prompt queue`, () => {
      const loaded = load({
        model: "bloom-176b",
        cluster: { servers: [{ sku: "dgx-h100", count: 2 }] },
        start_state: { type: "splitwise", prompt: { num_instances: 1 }, token: { num_instances: 1 } },
        scheduler: { name: "mixed_pool", on_saturation: onSaturation },
        workload: { type: "trace", path: burst(), format: "splitwise" },
      });
      const { sim, finished } = simulate(loaded);
      assert.equal(finished.length, 6);
      assertDrained(sim, onSaturation);
      const firstCompletion = Math.min(...finished.map((r) => r.arrival + r.e2e));
      assert.ok(firstCompletion > 60, `the first request finishes after its decode (${firstCompletion} s)`);
      const byId = [...finished].sort((a, b) => a.id - b.id);
      const prefill = prefillTime(perfOf(loaded, "h100-80gb"), 4096);
      for (const request of byId) {
        // Prefills run one after another on the single prompt instance: request i's first token
        // comes after i + 1 prefills (plus its shipment), never after a request's whole decode.
        assert.ok(
          request.ttft < (request.id + 1) * prefill + 1,
          `request ${request.id}: TTFT ${request.ttft} s, ${request.id + 1} prefills take ${(request.id + 1) * prefill} s`,
        );
      }
      // Held requests still go in arrival order (first come, first served).
      for (let i = 1; i < byId.length; i++) assert.ok(byId[i]!.promptStart >= byId[i - 1]!.promptStart);
    });
  }
});
