/**
 * Reference parity: every run in test/fixtures/splitwise-sim (upstream splitwise-sim outputs)
 * reproduced in-process from its resolved config.yaml in upstream-compatible mode.
 *
 * - every request's E2E / queue / TTFT / TBT / nth-token overhead (detailed/0.csv) within 1e-9 relative;
 * - every node of request_nodes.csv (prompt, KV transfer, token: runner, start and completion time)
 *   within 1e-9 relative, for all six runs (the 3-request examples and the Azure replays);
 * - the Azure runs' TTFT/TBT/E2E p50/p90/p99 from our run summary within 1% of summary_table.csv.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { validateConfig, type LoadedConfig } from "../../src/config/config.ts";
import { readSplitwiseConfig } from "../../src/config/splitwise-compat.ts";
import { Rng } from "../../src/core/rng.ts";
import type { RequestRecord } from "../../src/metrics/types.ts";
import type { SimRequest } from "../../src/serving/request.ts";
import { SPLITWISE_REFERENCE } from "../fixtures/reference.ts";
import { runSimulation } from "../../src/simulate/run.ts";
import { buildSetup } from "../../src/simulate/setup.ts";
import { Simulation } from "../../src/simulate/simulation.ts";
import { UpstreamOutputs } from "../../src/simulate/upstream-outputs.ts";
import { openConfiguredWorkload } from "../../src/simulate/workload.ts";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const REFERENCE = SPLITWISE_REFERENCE;

/** Upstream computes every metric from absolute times (up to ~3,500 s), so exact zeros come out as
 * zeros there and here; the absolute floor only guards values that are differences of equal times. */
const RELATIVE = 1e-9;
const ABSOLUTE_FLOOR = 1e-12;

function close(actual: number, expected: number, relative = RELATIVE): boolean {
  return (
    Math.abs(actual - expected) <= relative * Math.max(Math.abs(actual), Math.abs(expected)) + ABSOLUTE_FLOOR
  );
}

function assertClose(actual: number, expected: number, what: string, relative = RELATIVE): void {
  assert.ok(
    close(actual, expected, relative),
    `${what}: got ${actual}, upstream ${expected} (relative error ${Math.abs(actual - expected) / Math.abs(expected)})`,
  );
}

/** Header-indexed rows of a plain CSV (the reference files have no quoted fields). */
function readCsv(path: string): Record<string, string>[] {
  const raw = readFileSync(path);
  const text = (path.endsWith(".gz") ? gunzipSync(raw) : raw).toString("utf8");
  const lines = text.split(/\r?\n/).filter((line) => line !== "");
  const header = lines[0]!.split(",");
  return lines.slice(1).map((line) => {
    const cells = line.split(",");
    assert.equal(cells.length, header.length, `${path}: ragged row "${line}"`);
    return Object.fromEntries(header.map((name, i) => [name, cells[i]!]));
  });
}

function num(row: Record<string, string>, column: string): number {
  const value = row[column];
  assert.ok(value !== undefined, `missing column ${column}`);
  return Number(value);
}

interface ReferenceRun {
  readonly name: string;
  readonly dir: string;
  readonly trace: string;
}

function referenceRun(name: string): ReferenceRun {
  const dir = join(REFERENCE, "runs", name);
  const overrides = readFileSync(join(dir, "overrides.txt"), "utf8");
  const trace = /^trace\.filename=(.+)$/m.exec(overrides)?.[1]?.trim() ?? "missing";
  const plain = join(REFERENCE, "traces", `${trace}.csv`);
  return { name, dir, trace: existsSync(plain) ? plain : `${plain}.gz` };
}

/** The run's config exactly as `simulate --splitwise-config <dir>/config.yaml --trace <trace>` builds it. */
function loadRun(run: ReferenceRun): LoadedConfig {
  const source = join(run.dir, "config.yaml");
  const raw = readSplitwiseConfig(source);
  raw.workload = { type: "trace", path: run.trace, format: "splitwise" };
  return { config: validateConfig(raw, source), baseDir: REPO_ROOT, source };
}

interface NodeTimes {
  readonly prompt: { runner: string; start: number; end: number };
  readonly token: { runner: string; start: number; end: number };
  readonly kv: { start: number; end: number } | null;
}

/** Runs the simulation directly to read every request's task and KV-transfer timestamps. */
function simulateNodes(loaded: LoadedConfig): Map<number, NodeTimes> {
  const schedulerRng = new Rng(loaded.config.seed).fork("scheduler");
  const setup = buildSetup(loaded.config, loaded.baseDir, () => schedulerRng.nextFloat());
  const nodes = new Map<number, NodeTimes>();
  const simulation = new Simulation(setup, openConfiguredWorkload(loaded.config, loaded.baseDir), {
    requestCompleted: (request: SimRequest, now: number) => {
      const transfer = request.kvTransfer;
      nodes.set(request.id, {
        prompt: {
          runner: request.prompt.instance!.label,
          start: request.prompt.startTime,
          end: request.prompt.completionTime,
        },
        token: { runner: request.token.instance!.label, start: request.token.startTime, end: now },
        kv: transfer === null ? null : { start: transfer.startTime, end: transfer.completionTime },
      });
    },
  });
  simulation.run();
  return nodes;
}

function checkDetailed(run: ReferenceRun, records: readonly RequestRecord[]): void {
  const expected = readCsv(join(run.dir, "detailed", "0.csv.gz"));
  assert.equal(records.length, expected.length, "completed requests");
  const byId = new Map(records.map((record) => [record.id, record]));
  for (const row of expected) {
    const id = num(row, "request_ids");
    const record = byId.get(id);
    assert.ok(record !== undefined, `request ${id} did not complete`);
    assert.equal(record.prompt_tokens, num(row, "prompt_sizes"), `request ${id} prompt_sizes`);
    assert.equal(record.output_tokens, num(row, "token_sizes"), `request ${id} token_sizes`);
    assertClose(record.e2e_s, num(row, "response_times"), `request ${id} response_times`);
    assertClose(record.queue_s, num(row, "queue_times"), `request ${id} queue_times`);
    assertClose(record.ttft_s, num(row, "ttft_times"), `request ${id} ttft_times`);
    assertClose(record.tbt_s, num(row, "tbt_times"), `request ${id} tbt_times`);
    assertClose(
      record.nth_token_overhead_s,
      num(row, "nth_token_overheads"),
      `request ${id} nth_token_overheads`,
    );
  }
  // Upstream writes detailed/0.csv in completion order; so does our record stream.
  assert.deepEqual(
    records.map((record) => record.id),
    expected.map((row) => num(row, "request_ids")),
    "completion order",
  );
}

function checkNodes(run: ReferenceRun, nodes: ReadonlyMap<number, NodeTimes>): void {
  const file = existsSync(join(run.dir, "request_nodes.csv"))
    ? join(run.dir, "request_nodes.csv")
    : join(run.dir, "request_nodes.csv.gz");
  const rows = readCsv(file);
  const kvSeen = new Set<number>();
  for (const row of rows) {
    const id = num(row, "request_id");
    const node = nodes.get(id);
    assert.ok(node !== undefined, `request ${id} did not complete`);
    const type = row.node_type;
    const start = num(row, "start_timestamp");
    const end = num(row, "completion_timestamp");
    if (type === "PROMPT" || type === "TOKEN") {
      const ours = type === "PROMPT" ? node.prompt : node.token;
      assert.equal(ours.runner, row.runner, `request ${id} ${type} runner`);
      assertClose(ours.start, start, `request ${id} ${type} start_timestamp`);
      assertClose(ours.end, end, `request ${id} ${type} completion_timestamp`);
    } else {
      assert.equal(type, "KVCacheTransfer", `request ${id}: unexpected node type`);
      assert.ok(node.kv !== null, `request ${id}: upstream shipped its KV cache, we did not`);
      assertClose(node.kv.start, start, `request ${id} KV transfer start_timestamp`);
      assertClose(node.kv.end, end, `request ${id} KV transfer completion_timestamp`);
      kvSeen.add(id);
    }
  }
  for (const [id, node] of nodes) {
    assert.equal(
      node.kv !== null,
      kvSeen.has(id),
      `request ${id}: KV transfer present here but not upstream`,
    );
  }
}

interface TableRow {
  readonly requests_completed: number;
  readonly sim_end_s: number;
  readonly [metric: string]: number;
}

function summaryTable(): Map<string, TableRow> {
  const table = new Map<string, TableRow>();
  for (const row of readCsv(join(REFERENCE, "summary_table.csv"))) {
    const numbers = Object.fromEntries(
      Object.entries(row)
        .filter(([key]) => key !== "run" && key !== "trace" && key !== "oom_csv")
        .map(([key, value]) => [key, Number(value)]),
    ) as unknown as TableRow;
    table.set(row.run!, numbers);
  }
  return table;
}

const TABLE = summaryTable();

function parityCase(name: string, checkSummary: boolean): void {
  void it(name, () => {
    const run = referenceRun(name);
    const loaded = loadRun(run);
    const records: RequestRecord[] = [];
    const result = runSimulation(loaded, { onRecord: (record) => records.push(record) });
    checkDetailed(run, records);
    checkNodes(run, simulateNodes(loadRun(run)));

    const reference = TABLE.get(name);
    assert.ok(reference !== undefined, `${name} missing from summary_table.csv`);
    const { summary } = result;
    assert.equal(summary.requests.arrived, reference.requests_completed);
    assert.equal(summary.requests.completed, reference.requests_completed);
    // summary_table.csv rounds the end time to the millisecond.
    assert.ok(
      Math.abs(result.outcome.endTime_s - reference.sim_end_s) <= 5e-4 + 1e-9,
      `simulation end ${result.outcome.endTime_s} vs ${reference.sim_end_s}`,
    );
    if (!checkSummary) return;
    for (const metric of ["ttft", "tbt", "e2e"] as const) {
      const ours = summary[`${metric}_s`];
      for (const quantile of ["p50", "p90", "p99"] as const) {
        const expected = reference[`${metric}_${quantile}`]!;
        assert.ok(
          Math.abs(ours[quantile] - expected) <= 0.01 * expected,
          `${metric} ${quantile}: ${ours[quantile]} vs upstream ${expected}`,
        );
      }
    }
  });
}

void describe("upstream splitwise-sim parity (compatible mode)", () => {
  void describe("3-request examples, timestamp-exact", () => {
    parityCase("ex_baseline_h_example", false);
    parityCase("ex_splitwise_ha_example", false);

    void it("reproduces the worked example of the spec (Splitwise-HA, bloom-176b)", () => {
      const nodes = simulateNodes(loadRun(referenceRun("ex_splitwise_ha_example")));
      const first = nodes.get(0)!;
      // Prefill of 4096 tokens on the H100 prompt instance, then 4096 tokens of KV at 200 GiB/s.
      assert.equal(first.prompt.runner, "h100-80gb_1");
      assert.equal(first.token.runner, "a100-80gb_0");
      assertClose(first.prompt.end - first.prompt.start, 0.6495982770284172, "prefill 4096");
      assertClose(first.kv!.end - first.kv!.start, 0.07656250000000009, "KV transfer of 4096 tokens");
    });
  });

  void it("takes upstream's end_time: arrivals after it are not run, and what is left counts as unfinished", () => {
    const loaded = loadRun(referenceRun("azure600_baseline_h4_tokenjsq_debug"));
    assert.equal(loaded.config.end_time_s, 86400);
    const cut = { ...loaded, config: { ...loaded.config, end_time_s: 120 } };
    const { summary, outcome } = runSimulation(cut);
    assert.ok(outcome.endTime_s <= 120, `ran to ${outcome.endTime_s} s`);
    assert.ok(summary.requests.arrived > 0 && summary.requests.unfinished > 0);
    assert.equal(summary.requests.arrived, summary.requests.completed + summary.requests.unfinished);
  });

  void describe("upstream/request_nodes.csv, row for row", () => {
    const scratch = mkdtempSync(join(tmpdir(), "splitscale-parity-"));
    after(() => rmSync(scratch, { recursive: true, force: true }));
    for (const name of [
      "ex_splitwise_ha_example",
      "azure600_baseline_h4_tokenjsq_debug",
      "azure600_splitwise_hh_3p1t_mixedpool_debug",
    ]) {
      void it(name, () => {
        const run = referenceRun(name);
        const outputs = new UpstreamOutputs();
        const { outcome } = runSimulation(loadRun(run), {
          onRecord: outputs.onRecord,
          onRequestCompleted: outputs.onRequestCompleted,
        });
        const dir = join(scratch, name);
        outputs.write(dir, outcome.instances);
        // detailed/0_alloc.csv: one row per instance, its processor and utilization.
        const alloc = readCsv(join(dir, "upstream", "detailed", "0_alloc.csv"));
        assert.deepEqual(
          alloc.map((row) => row.instance_names),
          outcome.instances.map((instance) => instance.label.replace(/_\d+$/, "")),
        );
        for (const [i, row] of alloc.entries())
          assert.equal(num(row, "utilizations"), outcome.instances[i]!.utilization);
        const ours = readCsv(join(dir, "upstream", "request_nodes.csv"));
        const file = existsSync(join(run.dir, "request_nodes.csv"))
          ? join(run.dir, "request_nodes.csv")
          : join(run.dir, "request_nodes.csv.gz");
        const expected = readCsv(file);
        assert.equal(ours.length, expected.length, "rows");
        expected.forEach((row, i) => {
          const mine = ours[i]!;
          const where = `row ${i + 1}`;
          for (const key of ["request_id", "request_type", "node_id"]) {
            assert.equal(num(mine, key), num(row, key), `${where} ${key}`);
          }
          assert.equal(mine.node_type, row.node_type, `${where} node_type`);
          assert.equal(mine.runner, row.runner, `${where} runner`);
          for (const key of ["start_timestamp", "completion_timestamp"]) {
            assertClose(num(mine, key), num(row, key), `${where} ${key}`);
          }
        });
      });
    }
  });

  void describe("Azure conversation replays, per request and percentiles", () => {
    parityCase("azure600_baseline_h4_tokenjsq_debug", true);
    parityCase("azure600_splitwise_hh_3p1t_mixedpool_debug", true);
    parityCase("azure_replay_baseline_h4_tokenjsq", true);
    parityCase("azure_replay_splitwise_hh_3p1t_mixedpool", true);
  });
});
