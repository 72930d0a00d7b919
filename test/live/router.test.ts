/** Worker choice: least loaded (ties by KV use, prefill tokens, id), prefill-aware, round robin; exclusions are a preference. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Router } from "../../src/live/gateway/router.ts";
import { WorkerRegistry, type Worker } from "../../src/live/workers.ts";

function fleet(loads: Record<string, [inFlight: number, prefill: number]>): Worker[] {
  const registry = new WorkerRegistry();
  return Object.entries(loads).map(([id, [inFlight, prefill]]) => {
    const worker = registry.add({ id, pool: "p", url: `http://${id}`, phase: "ready" });
    worker.inFlight = inFlight;
    worker.prefillTokensInFlight = prefill;
    return worker;
  });
}

void describe("Router", () => {
  void it("least_loaded: fewest in flight, then KV use, then prefill tokens, then id; full workers skipped", () => {
    const workers = fleet({ a: [2, 0], b: [1, 500], c: [1, 100], d: [0, 0] });
    const kv: Record<string, number> = { b: 0.1, c: 0.5 };
    const router = new Router("least_loaded", 2, (id) => kv[id]);
    assert.equal(router.pick(workers)?.id, "d");
    workers[3]!.inFlight = 2; // d is full now, like a
    assert.equal(router.pick(workers)?.id, "b", "less KV in use wins the tie");
    kv.c = 0.1;
    assert.equal(router.pick(workers)?.id, "c", "then fewer prefill tokens");
    workers[1]!.inFlight = 2;
    workers[2]!.inFlight = 2;
    assert.equal(router.pick(workers), undefined, "everyone full");
  });

  void it("prefers workers not excluded, and falls back to an excluded one rather than none", () => {
    const workers = fleet({ a: [0, 0], b: [3, 0], c: [1, 0] });
    const router = new Router("least_loaded", 4);
    assert.equal(router.pick(workers, new Set(["a"]))?.id, "c");
    assert.equal(router.pick(workers, new Set(["a", "b", "c"]))?.id, "a");
    assert.equal(router.pick(workers, new Set())?.id, "a");
  });

  void it("least_prefill_tokens orders by prompt tokens in prefill first", () => {
    const workers = fleet({ a: [0, 900], b: [3, 10], c: [3, 10] });
    assert.equal(new Router("least_prefill_tokens", 0).pick(workers)?.id, "b");
  });

  void it("round_robin cycles through the open workers by id", () => {
    const workers = fleet({ b: [0, 0], a: [0, 0], c: [5, 0] });
    const router = new Router("round_robin", 4);
    assert.deepEqual(
      [1, 2, 3].map(() => router.pick(workers)?.id),
      ["a", "b", "a"],
    );
  });
});
