/** `splitscale sweep`: a grid of runs in parallel, its table, JSON, CSV and chart, and bad grids. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { cli, EXIT_FAILURE, EXIT_USAGE, parseCsv } from "./helpers.ts";

const scratch = mkdtempSync(join(tmpdir(), "splitscale-sweep-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const SMALL = ["--preset", "azure-conv-baseline-h100", "--set", "workload.limit=200", "--no-progress"];

void describe("splitscale sweep", () => {
  void it("runs each value in its own directory and reports them in order", async () => {
    const out = join(scratch, "servers");
    const result = await cli(
      "sweep",
      ...SMALL,
      "--vary",
      "cluster.servers.0.count=4,2",
      "--json",
      "--out",
      out,
    );
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      runs: { "cluster.servers.0.count": number; gpu_hours: number; requests: { completed: number } }[];
    };
    // Values are typed as the config receives them (numbers load as numeric columns in pandas).
    assert.deepEqual(
      report.runs.map((run) => run["cluster.servers.0.count"]),
      [4, 2],
    );
    for (const run of report.runs) assert.equal(run.requests.completed, 200);
    // Each run is an ordinary simulate run; the sweep's numbers are its summary's.
    const summary = JSON.parse(readFileSync(join(out, "count_2", "summary.json"), "utf8")) as {
      gpu_hours: number;
    };
    assert.equal(report.runs[1]!.gpu_hours, summary.gpu_hours);
    assert.ok(report.runs[0]!.gpu_hours > report.runs[1]!.gpu_hours, "twice the servers, more GPU-hours");

    const [header, ...rows] = parseCsv(readFileSync(join(out, "sweep.csv"), "utf8")) as [
      string[],
      ...string[][],
    ];
    assert.equal(header[0], "cluster.servers.0.count");
    for (const name of ["gpu_hours", "slo_attainment", "ttft_p99_s", "tbt_p99_s", "run_dir"])
      assert.ok(header.includes(name), `sweep.csv lacks ${name}`);
    assert.deepEqual(
      rows.map((row) => row[0]),
      ["4", "2"],
    );
    assert.ok(existsSync(join(out, "sweep.png")) && existsSync(join(out, "sweep.svg")));
  });

  void it("refuses a malformed --vary and a bad value before running anything (exit 2)", async () => {
    const malformed = await cli("sweep", ...SMALL, "--vary", "cluster.servers.0.count");
    assert.equal(malformed.code, EXIT_USAGE);
    assert.match(malformed.stderr, /--vary expects KEY=V1,V2/);
    const out = join(scratch, "bad-value");
    const bad = await cli("sweep", ...SMALL, "--vary", "cluster.servers.0.count=2,-1", "--out", out);
    assert.equal(bad.code, EXIT_USAGE);
    // Blamed on the --vary value that gave it (it used to say --set).
    assert.match(bad.stderr, /--vary cluster\.servers\.0\.count=-1: cluster\.servers\.0\.count/);
    assert.ok(!existsSync(out), "no run started");
    const clash = await cli("sweep", ...SMALL, "--vary", "scheduler.name=a/b,a_b");
    assert.equal(clash.code, EXIT_USAGE);
    assert.match(clash.stderr, /would share the run directory/);
    // One base config: --config and --preset together are refused (one of them was dropped).
    const both = await cli("sweep", ...SMALL, "-c", "presets/everai-burst.yaml", "--vary", "seed=1,2");
    assert.equal(both.code, EXIT_USAGE);
    assert.match(both.stderr, /use only one of --config and --preset/);
    const format = await cli("sweep", ...SMALL, "--trace-format", "csv", "--vary", "seed=1,2");
    assert.equal(format.code, EXIT_USAGE);
    assert.match(format.stderr, /Allowed choices are auto, azure, splitwise, mooncake/);
  });

  void it("refuses a combination that cannot run before any run starts, naming it (exit 3)", async () => {
    const out = join(scratch, "cannot-run");
    const result = await cli("sweep", ...SMALL, "--vary", "scheduler.name=jsq,mixed_pool", "--out", out);
    assert.equal(result.code, EXIT_FAILURE, result.stderr);
    assert.match(
      result.stderr,
      /cannot run this configuration: run name=mixed_pool: .*needs start_state\.type: splitwise/,
    );
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
    assert.ok(!existsSync(out), "no run started");
  });
});
