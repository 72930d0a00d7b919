import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { stringify } from "yaml";

const BIN = join(import.meta.dirname, "..", "..", "bin", "splitscale.js");

/** A tiny autoscaled config with an rl section (generator workload, seconds to train). */
function writeConfig(dir: string): string {
  const path = join(dir, "small.yaml");
  writeFileSync(
    path,
    stringify({
      model: "llama2-70b",
      cluster: { servers: [{ sku: "dgx-h100", count: 2 }] },
      start_state: { type: "splitwise", prompt: { num_instances: 1 }, token: { num_instances: 1 } },
      scheduler: { name: "mixed_pool", on_saturation: "queue" },
      workload: {
        type: "generator",
        seed: 3,
        arrival: { process: "poisson", rate_per_s: 3 },
        lengths: {
          prompt: { dist: "uniform", min: 100, max: 1500 },
          output: { dist: "uniform", min: 10, max: 200 },
        },
        duration_s: 120,
      },
      autoscaling: {
        startup_delay_s: 10,
        pools: { prefill: { min: 1, max: 3 }, decode: { min: 1, max: 2 } },
      },
      rl: {
        action: "discrete",
        episode: { length_s: 60, max_drain_s: 30 },
        ppo: { hidden: [8], epochs: 1 },
        train: { envs_per_iteration: 2, eval_every: 1 },
      },
    }),
  );
  return path;
}

function run(args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

void describe("splitscale train", () => {
  void it("trains, writes its outputs, and the policy runs in compare as rl:FILE", () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-cli-"));
    const config = writeConfig(dir);
    const out = join(dir, "rl");
    const stdout = run([
      "train",
      "-c",
      config,
      "--steps",
      "60",
      "--threads",
      "0",
      "--out",
      out,
      "--no-progress",
    ]);
    assert.match(stdout, /trained \d+ steps in \d+ iterations/);
    for (const file of [
      "policy.json",
      "policy-last.json",
      "learning_curve.csv",
      "learning_curve.svg",
      "learning_curve.png",
      "train.json",
    ])
      assert.ok(existsSync(join(out, file)), file);
    assert.ok(existsSync(join(out, "checkpoints", "latest.json")));
    const summary = JSON.parse(readFileSync(join(out, "train.json"), "utf8")) as { steps: number };
    assert.ok(summary.steps >= 60);
    const compared = run([
      "compare",
      "-c",
      config,
      "--policies",
      `static:config,rl:${join(out, "policy.json")}`,
      "--threads",
      "1",
      "--out",
      join(dir, "cmp"),
      "--json",
      "--no-progress",
    ]);
    const report = JSON.parse(compared) as { policies: { name: string; requests: { completed: number } }[] };
    assert.equal(report.policies.length, 2);
    assert.ok(report.policies[1]!.name.startsWith("rl:"));
    assert.ok(report.policies[1]!.requests.completed > 0);
    // Both runs over time in one long-format CSV (policy first), and their chart.
    const timeline = readFileSync(join(dir, "cmp", "timeline.csv"), "utf8")
      .trimEnd()
      .split("\n");
    assert.match(timeline[0]!, /^policy,start_s,end_s,arrived,/);
    const policies = new Set(timeline.slice(1).map((line) => line.split(",")[0]));
    assert.deepEqual(
      [...policies],
      report.policies.map((policy) => policy.name),
    );
    assert.ok(existsSync(join(dir, "cmp", "timeline.png")));
  });

  void it("explains its options and rejects bad ones", () => {
    assert.match(run(["train", "--help"]), /--resume <dir>[\s\S]*Examples:/);
    assert.throws(
      () => run(["train", "--steps", "0", "--no-progress"]),
      /--steps expects a positive integer/,
    );
  });
});
