/**
 * Translating upstream splitwise-sim configs (`--splitwise-config`): the settings upstream honours
 * are honoured, Hydra's unresolved references are resolved, and what splitscale cannot reproduce is
 * refused with the reason instead of running with different results.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { validateConfig } from "../../src/config/config.ts";
import { readSplitwiseConfig, translateSplitwiseConfig } from "../../src/config/splitwise-compat.ts";
import { ConfigError, UsageError } from "../../src/errors.ts";
import { runSimulation } from "../../src/simulate/run.ts";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const RUNS = join(REPO_ROOT, "test", "fixtures", "splitwise-sim", "runs");
const scratch = mkdtempSync(join(tmpdir(), "splitscale-compat-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

type Raw = Record<string, unknown>;

/** A reference run's config.yaml as Hydra resolved it, to edit one key at a time. */
function reference(run: string): Raw {
  return parse(readFileSync(join(RUNS, run, "config.yaml"), "utf8")) as Raw;
}

const BASELINE = "ex_baseline_h_example";
const SPLITWISE = "ex_splitwise_ha_example";

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  assert.fail("expected an error");
}

void describe("--splitwise-config translation", () => {
  void it("honours a uniform start state's instance settings (batch size, token budget, TP, instance type)", () => {
    const raw = reference(BASELINE);
    const state = raw.start_state as Raw;
    state.instance = {
      instance_type: "ORCA",
      max_batch_size: 4,
      max_batch_tokens: 256,
      pipeline_parallelism: 1,
      tensor_parallelism: 4,
    };
    const config = validateConfig(translateSplitwiseConfig(raw, "c.yaml"), "c.yaml");
    assert.equal(config.start_state.type, "baseline");
    const instance = config.start_state.type === "baseline" ? config.start_state.instance : undefined;
    assert.deepEqual(
      [instance?.batching, instance?.max_batch_size, instance?.tensor_parallelism],
      ["orca", 4, 4],
    );
    // Without an instance block, upstream's start_state/*.yaml defaults apply.
    delete state.instance;
    const defaults = validateConfig(translateSplitwiseConfig(raw, "c.yaml"), "c.yaml");
    assert.equal(
      defaults.start_state.type === "baseline" && defaults.start_state.instance.max_batch_size,
      512,
    );
  });

  void it("lays out servers and splits as upstream: SKUs grouped, a split sliced to the cluster, no PP", () => {
    const raw = reference(SPLITWISE);
    raw.cluster = {
      servers: [
        { sku: "dgx-a100", count: 1 },
        { sku: "dgx-h100", count: 1 },
        { sku: "dgx-a100", count: 1 },
      ],
    };
    const state = raw.start_state as Raw & { prompt: Raw; token: Raw };
    state.split_type = "homogeneous";
    state.prompt.num_instances = 2;
    state.token.num_instances = 3;
    state.prompt.pipeline_parallelism = 2;
    const translated = translateSplitwiseConfig(raw, "c.yaml") as {
      cluster: { servers: Raw[] };
      start_state: { prompt: Raw; token: Raw };
    };
    // Upstream's servers are a map from SKU to its servers, in first-appearance order.
    assert.deepEqual(translated.cluster.servers, [
      { sku: "dgx-a100", count: 2 },
      { sku: "dgx-h100", count: 1 },
    ]);
    // servers[:2] host prompt instances and servers[2:5], only one server, the token instance.
    assert.equal(translated.start_state.prompt.num_instances, 2);
    assert.equal(translated.start_state.token.num_instances, 1);
    assert.equal(translated.start_state.prompt.pipeline_parallelism, 1);
  });

  void it("resolves Hydra's unresolved ${a.b} references, whole and inside strings", () => {
    const raw = reference(SPLITWISE);
    raw.sweep = 2;
    raw.label = "p";
    const servers = (raw.cluster as { servers: Raw[] }).servers;
    servers[0]!.count = "${sweep}";
    (raw.start_state as Raw).state_type = "splitwise_${sweep}_1";
    const translated = translateSplitwiseConfig(raw, "c.yaml") as { cluster: { servers: Raw[] } };
    assert.equal(translated.cluster.servers[0]!.count, 2);
  });

  void it("refuses OmegaConf resolvers and dangling references, saying how to resolve the file", () => {
    const raw = reference(SPLITWISE);
    (raw.cluster as { servers: Raw[] }).servers[0]!.count = "${eval:'int(4.76*(40-${sweep})//2.21)'}";
    const resolver = errorOf(() => translateSplitwiseConfig(raw, "c.yaml"));
    assert.ok(resolver instanceof UsageError);
    assert.match(resolver.message, /cluster\.servers\[0\]\.count: .*OmegaConf resolver.*--cfg job --resolve/);
    (raw.cluster as { servers: Raw[] }).servers[0]!.count = "${nope.count}";
    assert.match(
      errorOf(() => translateSplitwiseConfig(raw, "c.yaml")).message,
      /\$\{nope\.count\} refers to a key/,
    );
  });

  void it("refuses what it cannot reproduce: several applications, a routing delay, a DRL scaling manager", () => {
    const two = reference(BASELINE);
    const applications = two.applications as Raw[];
    applications.push({ ...applications[0]!, application_id: 1, model_architecture: "llama2-70b" });
    assert.match(
      errorOf(() => translateSplitwiseConfig(two, "c.yaml")).message,
      /2 applications \(bloom-176b, llama2-70b\)/,
    );
    const delayed = reference(BASELINE);
    (delayed.router as { overheads: Raw }).overheads.routing_delay = 0.5;
    assert.match(
      errorOf(() => translateSplitwiseConfig(delayed, "c.yaml")).message,
      /routing_delay: 0\.5 s is not modelled/,
    );
    const drl = reference(SPLITWISE);
    (drl.applications as Raw[])[0]!.scaling_manager = { scale_up_delay: 0 };
    assert.match(
      errorOf(() => translateSplitwiseConfig(drl, "c.yaml")).message,
      /splitwise-DRL autoscaling config/,
    );
  });

  void it("reads performance_model.db_path from the working directory, upstream's default falling back to the bundled table", () => {
    const raw = reference(BASELINE);
    const translated = translateSplitwiseConfig(raw, "c.yaml") as { performance_model: Raw };
    assert.deepEqual(
      translated.performance_model,
      { type: "db" },
      "data/perf_model.csv is the bundled table",
    );
    (raw.performance_model as Raw).db_path = "no/such/table.csv";
    assert.match(
      errorOf(() => translateSplitwiseConfig(raw, "c.yaml")).message,
      /db_path: no\/such\/table\.csv not found/,
    );
    const table = join(scratch, "my-table.csv");
    writeFileSync(table, readFileSync(join(REPO_ROOT, "data", "perf", "splitwise_perf_model.csv")));
    (raw.performance_model as Raw).db_path = table;
    const custom = translateSplitwiseConfig(raw, "c.yaml") as { performance_model: Raw };
    assert.equal(custom.performance_model.table, table);
  });

  void it("takes a run directory for its config.yaml, and points a splitscale config at --config", () => {
    const dir = join(scratch, "run-dir");
    mkdirSync(join(dir, ".hydra"), { recursive: true });
    writeFileSync(join(dir, ".hydra", "config.yaml"), stringify(reference(BASELINE)));
    const translated = readSplitwiseConfig(dir) as { start_state: Raw };
    assert.equal(translated.start_state.type, "baseline");
    const ours = join(scratch, "ours.yaml");
    writeFileSync(ours, "model: llama2-70b\nscheduler: { name: token_jsq }\n");
    assert.match(
      errorOf(() => readSplitwiseConfig(ours)).message,
      /looks like a splitscale config: run it with --config/,
    );
  });
});

void describe("fleets a scheduler cannot use", () => {
  void it("refuses a kv_* scheduler on a fixed fleet with no token instance, instead of holding every request", () => {
    const raw = reference(SPLITWISE);
    (raw.applications as Raw[])[0]!.scheduler = "kv_round_robin";
    const translated = translateSplitwiseConfig(raw, "c.yaml") as Raw & { start_state: Raw & { token: Raw } };
    // Homogeneous: the first server hosts the prompt instance and no server a token instance.
    translated.start_state.split = "homogeneous";
    translated.start_state.token.num_instances = 0;
    translated.workload = {
      type: "trace",
      path: join(REPO_ROOT, "test", "fixtures", "splitwise-sim", "traces", "test_trace.csv"),
      format: "splitwise",
    };
    const error = errorOf(() =>
      runSimulation({ config: validateConfig(translated, "c.yaml"), baseDir: REPO_ROOT, source: "c.yaml" }),
    );
    assert.ok(error instanceof ConfigError, `${error.name}: ${error.message}`);
    assert.match(error.message, /kv_round_robin needs prompt and token instances/);
  });
});
