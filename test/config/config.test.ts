/**
 * Loading and validating simulation configs: defaults that make an empty file run, and errors that
 * name the file, line and key (or the `--set` override that introduced the bad value).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  applyOverrides,
  parseYamlSource,
  readConfigSource,
  validateConfig,
} from "../../src/config/config.ts";
import { readSplitwiseConfig } from "../../src/config/splitwise-compat.ts";
import { buildSetup } from "../../src/simulate/setup.ts";
import { openConfiguredWorkload } from "../../src/simulate/workload.ts";
import { readAllRequests } from "../../src/workload/index.ts";

const scratch = mkdtempSync(join(tmpdir(), "splitscale-config-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

/** The message of what `run` throws. */
function errorOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  assert.fail("expected an error");
}

void describe("defaults", () => {
  void it("an empty config is a fleet that can run: co-located instances get token_jsq", () => {
    const config = validateConfig({}, "empty.yaml");
    assert.equal(config.start_state.type, "baseline");
    assert.equal(config.scheduler.name, "token_jsq");
    assert.equal(config.start_state.type === "baseline" && config.start_state.instance.tensor_parallelism, 8);
    assert.doesNotThrow(() => buildSetup(config, scratch, () => 0));
  });

  void it("a splitwise start state gets mixed_pool; a named scheduler is kept", () => {
    const splitwise = validateConfig({ start_state: { type: "splitwise" } }, "s.yaml");
    assert.equal(splitwise.scheduler.name, "mixed_pool");
    const named = validateConfig({ scheduler: { name: "jsq", on_saturation: "queue" } }, "n.yaml");
    assert.equal(named.scheduler.name, "jsq");
    const settingsOnly = validateConfig({ scheduler: { transfer_bandwidth_gbps: 50 } }, "b.yaml");
    assert.equal(settingsOnly.scheduler.name, "token_jsq");
    assert.equal(settingsOnly.scheduler.transfer_bandwidth_gbps, 50);
  });

  void it("keeps start_state's default type when a block sets only its instance settings", () => {
    // As `--set start_state.instance.batching=orca` on an empty config makes; it was refused with
    // "start_state.type: Invalid discriminator value", blamed on the file.
    const config = validateConfig({ start_state: { instance: { batching: "orca" } } }, "i.yaml");
    assert.equal(config.start_state.type, "baseline");
    assert.equal(config.scheduler.name, "token_jsq");
    assert.equal(config.start_state.type === "baseline" && config.start_state.instance.batching, "orca");
  });
});

void describe("seeds", () => {
  const generator = (seed?: number): Record<string, unknown> => ({
    type: "generator",
    ...(seed === undefined ? {} : { seed }),
    arrival: { process: "poisson", rate_per_s: 5 },
    lengths: { prompt: { dist: "uniform", min: 10, max: 100 }, output: { dist: "fixed", value: 5 } },
    num_requests: 50,
  });
  const arrivals = (raw: Record<string, unknown>): number[] =>
    readAllRequests(openConfiguredWorkload(validateConfig(raw, "seed.yaml"), scratch)).map(
      (r) => r.arrival_s,
    );

  void it("a generator without its own seed follows the run's seed (so --seed varies the workload)", () => {
    const zero = arrivals({ workload: generator() });
    assert.deepEqual(zero, arrivals({ seed: 0, workload: generator(0) }), "seed 0 is the default stream");
    assert.notDeepEqual(zero, arrivals({ seed: 1, workload: generator() }));
    assert.deepEqual(
      arrivals({ seed: 1, workload: generator() }),
      arrivals({ seed: 1, workload: generator() }),
    );
  });

  void it("a generator's own seed wins over the run's", () => {
    assert.deepEqual(
      arrivals({ seed: 1, workload: generator(7) }),
      arrivals({ seed: 2, workload: generator(7) }),
    );
  });
});

void describe("errors", () => {
  void it("name the line of an unknown key, with a suggestion", () => {
    const path = file(
      "misspelled.yaml",
      "model: bloom-176b\ncluster:\n  server:\n    - { sku: dgx-h100, count: 1 }\n",
    );
    const { raw, locate } = readConfigSource(path);
    assert.match(
      errorOf(() => validateConfig(raw, path, locate)),
      /misspelled\.yaml:3: cluster: unknown key "server" \(did you mean "servers"\?\)/,
    );
  });

  void it("blame a bad value on the --set override that introduced it, not on the file", () => {
    const path = file("good.yaml", "model: bloom-176b\n");
    const { raw, locate } = readConfigSource(path);
    const overrides = ["clustr.x=3", "seed=abc"];
    applyOverrides(raw, overrides);
    const message = errorOf(() =>
      validateConfig(
        raw,
        path,
        locate,
        overrides.map((text) => ({ flag: "--set", text })),
      ),
    );
    assert.match(
      message,
      /--set clustr\.x=3: \(top level\): unknown key "clustr" \(did you mean "cluster"\?\)/,
    );
    assert.match(message, /--set seed=abc: seed: /);
    assert.doesNotMatch(message, /good\.yaml/);
  });

  void it("give the line and column of a YAML syntax error, in configs and --splitwise-config files", () => {
    assert.match(
      errorOf(() => parseYamlSource("a: [1,\n", "x.yaml")),
      /^x\.yaml:2:1: YAML syntax error/,
    );
    const broken = file("broken-upstream.yaml", "cluster:\n  servers: [\n");
    assert.match(
      errorOf(() => readSplitwiseConfig(broken)),
      /broken-upstream\.yaml:\d+:\d+: YAML syntax error/,
    );
  });

  void it("refuse a file whose top level is not a mapping", () => {
    const list = file("list.yaml", "- a\n- b\n");
    assert.match(
      errorOf(() => readConfigSource(list)),
      /list\.yaml: expected a mapping of config keys at the top level, got a list/,
    );
  });
});
