import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { train } from "../../src/rl/train.ts";
import { smallConfig } from "./helpers.ts";

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "rl-train-"));
}

/** The policy without provenance (step counters aside, two equivalent runs must agree on every weight). */
function agentsOf(path: string): unknown {
  return (JSON.parse(readFileSync(path, "utf8")) as { agents: unknown }).agents;
}

void describe("train", () => {
  void it("writes the policy, the learning curve and checkpoints", async () => {
    const out = tmp();
    const result = await train({ loaded: smallConfig(), outDir: out, steps: 100, threads: 0, charts: false });
    assert.ok(result.steps >= 100);
    assert.equal(result.iterations, result.curve.length);
    assert.ok(existsSync(join(out, "policy.json")));
    assert.ok(existsSync(join(out, "checkpoints", "latest.json")));
    assert.ok(existsSync(join(out, "checkpoints", "iter-000001.json")));
    const csv = readFileSync(join(out, "learning_curve.csv"), "utf8").trim().split("\n");
    assert.equal(csv.length, result.iterations + 1);
    assert.match(csv[0]!, /^iteration,steps,episodes,reward,slo_attainment,gpu_hours,/);
    const policy = JSON.parse(readFileSync(join(out, "policy.json"), "utf8")) as Record<string, unknown>;
    assert.equal(policy.format, "splitscale-rl/1");
    assert.equal(policy.trainer, undefined, "policy.json carries no trainer state");
  });

  void it("resumes from a checkpoint exactly: 2 iterations + resume equal one run", async () => {
    const loaded = smallConfig();
    const four = tmp();
    const full = await train({ loaded, outDir: four, steps: 300, threads: 0, charts: false });
    assert.ok(full.iterations >= 3, `${full.iterations} iterations`);
    const split = tmp();
    // A budget that the run reaches after exactly two iterations.
    const firstHalf = await train({
      loaded,
      outDir: split,
      steps: full.curve[1]!.steps,
      threads: 0,
      charts: false,
    });
    assert.equal(firstHalf.iterations, 2);
    const resumed = await train({
      loaded,
      outDir: split,
      steps: 300,
      resume: split,
      threads: 0,
      charts: false,
    });
    assert.equal(resumed.iterations, full.iterations);
    assert.equal(resumed.steps, full.steps);
    assert.deepEqual(agentsOf(join(split, "policy.json")), agentsOf(join(four, "policy.json")));
    const a = JSON.parse(readFileSync(join(split, "checkpoints", "latest.json"), "utf8")) as {
      trainer: { agents: unknown; reward_scalers: unknown };
    };
    const b = JSON.parse(readFileSync(join(four, "checkpoints", "latest.json"), "utf8")) as typeof a;
    assert.deepEqual(a.trainer.agents, b.trainer.agents, "critic and Adam moments too");
    assert.deepEqual(a.trainer.reward_scalers, b.trainer.reward_scalers);
  });

  void it("gives the same policy on worker threads as in the main thread", async () => {
    const loaded = smallConfig();
    const inline = tmp();
    const threaded = tmp();
    await train({ loaded, outDir: inline, steps: 100, threads: 0, charts: false });
    await train({ loaded, outDir: threaded, steps: 100, threads: 2, charts: false });
    assert.deepEqual(agentsOf(join(threaded, "policy.json")), agentsOf(join(inline, "policy.json")));
  });

  void it("refuses to resume from a policy.json (no trainer state)", async () => {
    const out = tmp();
    await train({ loaded: smallConfig(), outDir: out, steps: 1, threads: 0, charts: false });
    await assert.rejects(
      train({ loaded: smallConfig(), outDir: tmp(), steps: 1, threads: 0, resume: join(out, "policy.json") }),
      /not a training checkpoint/,
    );
  });
});
