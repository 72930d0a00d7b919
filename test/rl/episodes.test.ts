import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WorkloadTable } from "../../src/rl/episodes.ts";
import { readAllRequests } from "../../src/workload/index.ts";

const requests = Array.from({ length: 1000 }, (_, i) => ({
  id: i,
  arrival_s: i * 0.5,
  prompt_tokens: 100 + (i % 7) * 100,
  output_tokens: 10 + (i % 5),
}));
const table = new WorkloadTable(requests, "test");

void describe("episode workloads", () => {
  void it("cuts windows re-based to 0, and draws the same window for the same seed", () => {
    const a = readAllRequests(table.randomWindow(4, 60).source);
    const b = readAllRequests(table.randomWindow(4, 60).source);
    assert.deepEqual(a, b);
    assert.equal(a.length, 120);
    assert.ok(a[0]!.arrival_s >= 0 && a[0]!.arrival_s < 0.5);
    assert.ok(a[a.length - 1]!.arrival_s < 60);
    assert.notDeepEqual(readAllRequests(table.randomWindow(5, 60).source)[0], a[0]);
  });

  void it("randomizes the rate and the prompt lengths per episode within the ranges", () => {
    const episode = table.randomWindow(4, 60, [2, 2], [1.5, 1.5]);
    const faster = readAllRequests(episode.source);
    assert.equal(faster.length, 240, "twice the requests in the same 60 s");
    assert.equal(episode.arrivalsEnd_s, 60);
    assert.ok(faster[faster.length - 1]!.arrival_s < 60);
    for (const request of faster) {
      const original = requests[request.id]!;
      assert.equal(request.prompt_tokens, Math.min(700, Math.round(original.prompt_tokens * 1.5)));
      assert.equal(request.output_tokens, original.output_tokens);
    }
    const drawn = table.randomWindow(9, 60, [0.5, 2], [1, 1]);
    const count = readAllRequests(drawn.source).length;
    assert.ok(count >= 60 && count <= 240);
  });
});
