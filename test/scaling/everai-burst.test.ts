import assert from "node:assert/strict";
import { test } from "node:test";
import { readRawConfig, validateConfig } from "../../src/config/config.ts";
import { presetPath } from "../../src/config/presets.ts";
import { runSimulation } from "../../src/simulate/run.ts";
import { dirname } from "node:path";

void test("everai-burst: one worker, a burst scales to two, back to one after max_idle_time (seed 004)", () => {
  const path = presetPath("everai-burst");
  const config = validateConfig(readRawConfig(path), path);
  const result = runSimulation({ config, baseDir: dirname(path), source: path });
  const events = result.autoscaling!.manager.events;
  const ups = events.filter((event) => event.action === "scale_up");
  const drains = events.filter((event) => event.action === "drain");
  assert.equal(ups.length, 1, "one scale-up during the burst");
  assert.equal(drains.length, 1, "one scale-down after it");
  const up = ups[0]!;
  const drain = drains[0]!;
  // The burst runs from t = 60 s to 180 s; the second worker is asked for during it.
  assert.ok(up.time_s >= 60 && up.time_s < 180, `scale-up at ${up.time_s}`);
  // The worker that goes is the newer one, only after max_idle_time (60 s) without work.
  assert.equal(drain.instance, up.instance);
  const removed = result.outcome.instances.find((instance) => instance.id === drain.instance)!;
  assert.ok(drain.time_s >= 180 + 60 - 1e-9, `scale-down at ${drain.time_s}`);
  assert.ok(removed.lifetime_s > 0);
  assert.equal(result.summary.scaling!.max_replicas, 2);
  assert.equal(result.summary.scaling!.final_replicas, 1);
  assert.equal(result.summary.requests.completed, result.summary.requests.arrived);
});
