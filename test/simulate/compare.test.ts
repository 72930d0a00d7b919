/** `compare`'s plan: which runs `--policies` makes, and that every one is checked before any starts. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { validateConfig, type LoadedConfig } from "../../src/config/config.ts";
import { ConfigError, UsageError } from "../../src/errors.ts";
import { planRuns } from "../../src/simulate/compare.ts";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

function load(raw: Record<string, unknown>): LoadedConfig {
  return { config: validateConfig(raw, "compare.yaml"), baseDir: REPO_ROOT, source: "compare.yaml" };
}

const SPLIT = {
  model: "bloom-176b",
  cluster: { servers: [{ sku: "dgx-h100", count: 3 }] },
  start_state: { type: "splitwise", prompt: { num_instances: 2 }, token: { num_instances: 1 } },
  workload: {
    type: "generator",
    seed: 1,
    arrival: { process: "poisson", rate_per_s: 2 },
    lengths: {
      prompt: { dist: "uniform", min: 100, max: 1000 },
      output: { dist: "uniform", min: 10, max: 100 },
    },
    num_requests: 100,
  },
};

void describe("compare --policies", () => {
  void it("plans one run per entry, in order, with the static fleet sized for the peak", () => {
    const { runs, peak } = planRuns(load({ ...SPLIT, autoscaling: { policy: "sla" } }), [
      "static",
      "sla",
      "hpa",
    ]);
    assert.deepEqual(
      runs.map((run) => run.label),
      ["static", "sla", "hpa"],
    );
    assert.ok(peak !== undefined && peak.replicas.prefill! >= 1);
    assert.equal(runs[0]!.config.autoscaling, undefined, "the static run has a fixed fleet");
    assert.equal(runs[2]!.config.autoscaling?.policy, "hpa");
  });

  void it("expands `variants` to every variant the config defines, in order", () => {
    const withVariants = load({
      ...SPLIT,
      autoscaling: {
        policy: "sla",
        variants: { "hpa-a": { policy: "hpa" }, "kpa-b": { policy: "kpa" } },
      },
    });
    const { runs } = planRuns(withVariants, ["sla", "variants"]);
    assert.deepEqual(
      runs.map((run) => run.label),
      ["sla", "hpa-a", "kpa-b"],
    );
    assert.equal(runs[2]!.config.autoscaling?.policy, "kpa");
    assert.throws(() => planRuns(load(SPLIT), ["variants"]), /defines no autoscaling\.variants/);
  });

  void it("refuses an unknown policy with a suggestion, and a label listed twice", () => {
    assert.throws(
      () => planRuns(load(SPLIT), ["hpx"]),
      (error: Error) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, /unknown policy "hpx".*Did you mean "hpa"/);
        return true;
      },
    );
    assert.throws(() => planRuns(load(SPLIT), ["hpa", "hpa"]), /listed twice/);
  });

  void it("names a bad policy_config key cleanly, for the static sizing too", () => {
    const loaded = load({ ...SPLIT, autoscaling: { policy: "sla", policy_config: { foo: 1 } } });
    assert.throws(
      () => planRuns(loaded, ["static"]),
      (error: Error) => {
        assert.ok(error instanceof UsageError, `${error.name}: ${error.message}`);
        assert.match(error.message, /autoscaling\.policy_config: unknown key "foo"/);
        return true;
      },
    );
  });

  void it("refuses a run whose fleet cannot run before any run starts, naming the run", () => {
    const loaded = load({ ...SPLIT, start_state: { type: "baseline" }, scheduler: { name: "mixed_pool" } });
    assert.throws(
      () => planRuns(loaded, ["static:config"]),
      (error: Error) => {
        assert.ok(error instanceof ConfigError, `${error.name}: ${error.message}`);
        assert.match(
          error.message,
          /run static:config: scheduler\.name: mixed_pool .*needs start_state\.type: splitwise/,
        );
        return true;
      },
    );
  });
});
