/**
 * The `splitscale` command line, run as a child process: help, presets, exit codes and messages for
 * bad input, and the files and JSON a run writes. Runs are kept small (200 requests) and the
 * independent invocations run two at a time.
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { cli, EXIT_FAILURE, EXIT_USAGE, parseCsv, REPO_ROOT, type CliResult } from "./helpers.ts";

const scratch = mkdtempSync(join(tmpdir(), "splitscale-cli-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function write(name: string, content: string): string {
  const path = join(scratch, name);
  writeFileSync(path, content);
  return path;
}

const SPLITWISE_HEADER =
  "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size";
const SMALL = ["--set", "workload.limit=200", "--no-progress"];

void describe("splitscale CLI", { concurrency: 2 }, () => {
  void it("prints help for simulate and presets", async () => {
    const [simulate, presets] = await Promise.all([cli("simulate", "--help"), cli("presets", "--help")]);
    assert.equal(simulate.code, 0, simulate.stderr);
    for (const flag of [
      "--config",
      "--preset",
      "--splitwise-config",
      "--trace",
      "--set",
      "--seed",
      "--out",
      "--json",
    ])
      assert.ok(simulate.stdout.includes(flag), `simulate --help lacks ${flag}`);
    assert.match(simulate.stdout, /Exit codes/);
    assert.equal(presets.code, 0, presets.stderr);
    assert.match(presets.stdout, /Usage: splitscale presets/);
  });

  void it("lists every bundled preset", async () => {
    const result = await cli("presets");
    assert.equal(result.code, 0, result.stderr);
    const names = readdirSync(join(REPO_ROOT, "presets"))
      .filter((file) => file.endsWith(".yaml"))
      .map((file) => file.replace(/\.yaml$/, ""));
    assert.ok(names.length > 0);
    for (const name of names) assert.ok(result.stdout.includes(name), `preset ${name} missing from the list`);
    assert.match(result.stdout, /\(default\)/);
  });

  void it("names the file and line of a malformed trace row (exit 2)", async () => {
    const trace = write(
      "bad-trace.csv",
      `${SPLITWISE_HEADER}\n0,2,0,1.0,1,100,4\n1,2,0,1.5,1,100,4\n2,2,0,abc,1,100,4\n`,
    );
    const result = await cli(
      "simulate",
      "--preset",
      "azure-conv-baseline-h100",
      "--trace",
      trace,
      ...SMALL,
      "--out",
      join(scratch, "bad-trace"),
    );
    assert.equal(result.code, EXIT_USAGE, result.stderr);
    assert.ok(result.stderr.includes(`${trace}:4`), `stderr: ${result.stderr}`);
    assert.match(result.stderr, /arrival_timestamp/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace for bad input");
  });

  void it("rejects an unknown config key naming it, the file and the right key (exit 2)", async () => {
    const config = write("typo.yaml", "model: bloom-176b\nscheduler:\n  nme: token_jsq\n");
    const result = await cli("simulate", "--config", config, ...SMALL, "--out", join(scratch, "typo"));
    assert.equal(result.code, EXIT_USAGE, result.stderr);
    assert.ok(result.stderr.includes(config), `stderr: ${result.stderr}`);
    assert.match(result.stderr, /scheduler/);
    assert.match(result.stderr, /unknown key "nme"/);
    assert.match(result.stderr, /did you mean "name"/);
  });

  /** bloom-176b (329 GB of weights) on 2 x 80 GiB; shared by the two tests below. */
  let noFit: Promise<CliResult> | undefined;
  const runNoFit = (): Promise<CliResult> =>
    (noFit ??= cli(
      "simulate",
      "--preset",
      "azure-conv-baseline-h100",
      "--set",
      "start_state.instance.tensor_parallelism=2",
      "--set",
      "compat.uniform_uses_all_gpus=false",
      ...SMALL,
      "--out",
      join(scratch, "no-fit"),
    ));

  void it("refuses a model that does not fit its instance (exit 3)", async () => {
    const result = await runNoFit();
    assert.equal(result.code, EXIT_FAILURE, result.stderr);
    assert.match(result.stderr, /cannot run this configuration/);
  });

  void it("says why a model does not fit: its weights exceed the instance's GPU memory", async () => {
    const result = await runNoFit();
    assert.equal(result.code, EXIT_FAILURE);
    assert.match(result.stderr, /weights/);
  });

  void it("refuses a fixed fleet with no instances (exit 3)", async () => {
    const result = await cli(
      "simulate",
      "--preset",
      "azure-conv-baseline-h100",
      "--set",
      "cluster.servers.0.count=0",
    );
    assert.equal(result.code, EXIT_FAILURE, result.stderr);
    assert.match(result.stderr, /the fleet has no instances \(cluster\.servers has 0 servers\)/);
  });

  void it("refuses more Splitwise instances than servers (exit 3)", async () => {
    const result = await cli(
      "simulate",
      "--preset",
      "azure-conv-splitwise-hh",
      "--set",
      "start_state.prompt.num_instances=9",
      ...SMALL,
      "--out",
      join(scratch, "too-many"),
    );
    assert.equal(result.code, EXIT_FAILURE, result.stderr);
    assert.match(result.stderr, /9 prompt \+ 1 token servers requested but the cluster has 4/);
  });

  void it("rejects malformed --set, bad values and a missing --trace (exit 2)", async () => {
    const [noEquals, badValue, needsTrace] = await Promise.all([
      cli("simulate", "--set", "scheduler.name", "--no-progress"),
      cli(
        "simulate",
        "--preset",
        "azure-conv-baseline-h100",
        "--set",
        "start_state.instance.max_batch_size=abc",
        "--no-progress",
      ),
      cli("simulate", "--splitwise-config", write("upstream.yaml", "{}\n"), "--no-progress"),
    ]);
    assert.equal(noEquals.code, EXIT_USAGE);
    assert.match(noEquals.stderr, /--set expects key=value, got "scheduler.name"/);
    assert.equal(badValue.code, EXIT_USAGE, badValue.stderr);
    // The bad value came from --set, so the override is named rather than the preset file.
    assert.match(
      badValue.stderr,
      /--set start_state\.instance\.max_batch_size=abc: start_state\.instance\.max_batch_size/,
    );
    assert.equal(needsTrace.code, EXIT_USAGE);
    assert.match(needsTrace.stderr, /--splitwise-config needs --trace/);
    // Upstream replays splitwise CSV only: another --trace-format was silently ignored.
    const mooncake = await cli(
      "simulate",
      "--splitwise-config",
      write("upstream-format.yaml", "{}\n"),
      "--trace",
      write("t.jsonl", '{"timestamp": 0, "input_length": 10, "output_length": 5}\n'),
      "--trace-format",
      "mooncake",
      "--no-progress",
    );
    assert.equal(mooncake.code, EXIT_USAGE);
    assert.match(
      mooncake.stderr,
      /--trace-format mooncake: --splitwise-config replays a splitwise CSV trace/,
    );
  });

  void it("treats an unknown scheduler name as a bad config value (exit 2, naming where it was set)", async () => {
    const result = await cli(
      "simulate",
      "--preset",
      "azure-conv-baseline-h100",
      "--set",
      "scheduler.name=tokn_jsq",
      ...SMALL,
    );
    assert.equal(result.code, EXIT_USAGE);
    assert.match(result.stderr, /did you mean "token_jsq"/i);
    assert.match(result.stderr, /--set scheduler\.name=tokn_jsq: scheduler\.name/);
    const inFile = await cli(
      "simulate",
      "--config",
      write("bad-scheduler.yaml", "scheduler:\n  name: tokn_jsq\n"),
    );
    assert.equal(inFile.code, EXIT_USAGE);
    assert.match(inFile.stderr, /bad-scheduler\.yaml:2: scheduler\.name: unknown scheduler "tokn_jsq"/);
  });

  void it("--json prints the summary; --out gets summary.json, a one-row summary.csv and requests.csv", async () => {
    const out = join(scratch, "run");
    const result = await cli(
      "simulate",
      "--preset",
      "azure-conv-baseline-h100",
      ...SMALL,
      "--json",
      "--requests",
      "--out",
      out,
    );
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as Record<string, unknown> & {
      requests: { arrived: number; completed: number };
      slo: { attainment: number };
    };
    assert.equal(summary.requests.arrived, 200);
    assert.equal(summary.requests.completed, 200);
    for (const metric of ["ttft_s", "tbt_s", "e2e_s"]) {
      const distribution = summary[metric] as Record<string, unknown>;
      for (const stat of ["mean", "p50", "p90", "p99"]) {
        assert.equal(typeof distribution[stat], "number", `${metric}.${stat}`);
        assert.ok((distribution[stat] as number) > 0, `${metric}.${stat}`);
      }
    }
    assert.ok(summary.slo.attainment >= 0 && summary.slo.attainment <= 1);
    for (const key of ["gpu_hours", "cost_usd", "energy_kwh", "events", "wall_s"]) {
      assert.equal(typeof summary[key], "number", key);
      assert.ok((summary[key] as number) > 0, key);
    }
    // 4 DGX-H100 servers (8 GPUs each) for the simulated time.
    const simEnd = summary.sim_end_s as number;
    assert.ok(Math.abs((summary.gpu_hours as number) - (32 * simEnd) / 3600) < 1e-9);

    const onDisk = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(onDisk, summary, "stdout and summary.json agree");

    const csv = parseCsv(readFileSync(join(out, "summary.csv"), "utf8"));
    assert.equal(csv.length, 2, "summary.csv is one header and one row");
    const [header, row] = csv as [string[], string[]];
    assert.equal(row.length, header.length, "as many fields as columns");
    assert.equal(new Set(header).size, header.length, "column names are unique");
    const column = (name: string): string => {
      const index = header.indexOf(name);
      assert.ok(index >= 0, `summary.csv lacks ${name}`);
      return row[index]!;
    };
    assert.equal(Number(column("requests_arrived")), 200);
    assert.equal(Number(column("ttft_s_p99")), (summary.ttft_s as { p99: number }).p99);
    assert.equal(Number(column("slo_attainment")), summary.slo.attainment);

    assert.ok(existsSync(join(out, "requests.csv")));
    const requests = parseCsv(readFileSync(join(out, "requests.csv"), "utf8"));
    assert.equal(requests.length, 201);
    const [requestHeader] = requests as [string[]];
    for (const name of ["id", "arrival_s", "prompt_tokens", "output_tokens", "ttft_s", "tbt_s", "e2e_s"])
      assert.ok(requestHeader.includes(name), `requests.csv lacks ${name}`);
    assert.ok(requests.every((r) => r.length === requestHeader.length));

    const timeline = parseCsv(readFileSync(join(out, "timeline.csv"), "utf8"));
    const [timelineHeader] = timeline as [string[]];
    for (const name of ["start_s", "arrived", "ttft_p99_s", "slo_attainment", "gpus", "gpu_hours"])
      assert.ok(timelineHeader.includes(name), `timeline.csv lacks ${name}`);
    const arrivedColumn = timelineHeader.indexOf("arrived");
    const arrivals = timeline.slice(1).reduce((sum, row) => sum + Number(row[arrivedColumn]), 0);
    assert.equal(arrivals, 200, "timeline rows add up to the arrivals");
    assert.match(readFileSync(join(out, "timeline.svg"), "utf8"), /^<svg[\s\S]*TTFT[\s\S]*<\/svg>$/);
    assert.ok(readFileSync(join(out, "timeline.png")).subarray(1, 4).toString() === "PNG");
  });

  void it("notes that a scheduler which is not KV-aware ignores a Splitwise fleet's roles", async () => {
    const out = join(scratch, "split-token-jsq");
    const common = ["simulate", "--preset", "azure-conv-splitwise-hh", ...SMALL, "--no-charts", "--out", out];
    const noted = await cli(...common, "--set", "scheduler.name=token_jsq");
    assert.equal(noted.code, 0, noted.stderr);
    assert.match(noted.stderr, /note: scheduler token_jsq is not KV-aware/);
    const quiet = await cli(...common);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /KV-aware/, "mixed_pool splits prefill and decode");
  });

  void it("notes an empty workload and a trace with absolute timestamps, on stderr also with --json", async () => {
    const epoch = write(
      "epoch.csv",
      `${SPLITWISE_HEADER}\n0,2,0,1700000000,1,100,5\n1,2,0,1700000010,1,100,5\n`,
    );
    const base = [
      "simulate",
      "--preset",
      "azure-conv-baseline-h100",
      "--no-progress",
      "--no-charts",
      "--json",
    ];
    const late = await cli(...base, "--trace", epoch, "--out", join(scratch, "epoch"));
    assert.equal(late.code, 0, late.stderr);
    assert.equal((JSON.parse(late.stdout) as { requests: { completed: number } }).requests.completed, 2);
    assert.match(late.stderr, /note: the first request arrives at 1700000000 s .*set workload\.start_s/);
    // The timeline of 54 years is cut to at most 100,000 rows, and says so.
    assert.match(late.stderr, /note: timeline\.csv uses \d+ s intervals/);
    const rows = readFileSync(join(scratch, "epoch", "timeline.csv"), "utf8")
      .trim()
      .split("\n");
    assert.ok(rows.length <= 100_001, `${rows.length} lines`);

    // --set workload.* shapes the --trace workload (it used to be dropped when --trace replaced it).
    const rebased = await cli(
      ...base,
      "--trace",
      epoch,
      "--set",
      "workload.start_s=1700000000",
      "--out",
      join(scratch, "rebased"),
    );
    assert.equal(rebased.code, 0, rebased.stderr);
    assert.doesNotMatch(rebased.stderr, /first request arrives|timeline\.csv uses/);

    const empty = write("header-only.csv", `${SPLITWISE_HEADER}\n`);
    const none = await cli(...base, "--trace", empty, "--out", join(scratch, "empty"));
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stderr, /note: no request arrived/);
  });

  void it("says in one line when a path is the wrong kind: a trace that is a directory, an --out that is a file", async () => {
    const directory = join(scratch, "a-directory");
    mkdirSync(directory, { recursive: true });
    const file = write("a-file", "x");
    const [traceIsDirectory, outIsFile] = await Promise.all([
      cli(
        "simulate",
        "--preset",
        "azure-conv-baseline-h100",
        "--trace",
        directory,
        "--no-progress",
        "--out",
        join(scratch, "never-created"),
      ),
      cli("simulate", "--preset", "azure-conv-baseline-h100", ...SMALL, "--out", file),
    ]);
    assert.equal(traceIsDirectory.code, EXIT_USAGE, traceIsDirectory.stderr);
    assert.match(traceIsDirectory.stderr, /a-directory: is a directory, expected a trace file/);
    assert.equal(outIsFile.code, EXIT_USAGE, outIsFile.stderr);
    assert.match(outIsFile.stderr, /cannot create directory .*a-file: a file of that name exists/);
    for (const result of [traceIsDirectory, outIsFile]) assert.doesNotMatch(result.stderr, /\n\s+at /);
    assert.ok(!existsSync(join(scratch, "never-created")), "a run that failed leaves no empty --out");
  });

  void it("a rerun into the same --out leaves no file of the earlier run behind", async () => {
    const out = join(scratch, "rerun");
    const common = ["simulate", "--preset", "azure-conv-baseline-h100", ...SMALL, "--out", out];
    const first = await cli(...common, "--requests");
    assert.equal(first.code, 0, first.stderr);
    assert.ok(existsSync(join(out, "requests.csv")) && existsSync(join(out, "timeline.png")));
    const second = await cli(...common, "--no-charts");
    assert.equal(second.code, 0, second.stderr);
    assert.ok(!existsSync(join(out, "requests.csv")), "requests.csv of the first run");
    assert.ok(!existsSync(join(out, "timeline.png")), "timeline.png of the first run");
    assert.ok(existsSync(join(out, "summary.json")));
  });

  void it("config.resolved.yaml reruns the same run from its output directory (paths made absolute)", async () => {
    // azure-code-autoscale names its trace as ../data/...; rl-azure-conv also an RL checkpoint.
    for (const preset of ["azure-code-autoscale", "rl-azure-conv"]) {
      const first = join(scratch, `resolved-${preset}`);
      const again = join(scratch, `resolved-${preset}-again`);
      const ran = await cli("simulate", "--preset", preset, ...SMALL, "--no-charts", "--out", first);
      assert.equal(ran.code, 0, ran.stderr);
      const resolved = readFileSync(join(first, "config.resolved.yaml"), "utf8");
      assert.doesNotMatch(resolved, /\.\.\//, "no relative path left");
      const rerun = await cli(
        "simulate",
        "--config",
        join(first, "config.resolved.yaml"),
        ...SMALL,
        "--no-charts",
        "--out",
        again,
      );
      assert.equal(rerun.code, 0, rerun.stderr);
      // Only the wall time differs: the config hash is of the resolved config, so it is the same.
      const summary = (dir: string): unknown => {
        const { wall_s, ...rest } = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8")) as Record<
          string,
          unknown
        >;
        assert.equal(typeof wall_s, "number");
        assert.match(String(rest.config_hash), /^[0-9a-f]{16}$/);
        return rest;
      };
      assert.deepEqual(summary(again), summary(first), preset);
      for (const file of ["timeline.csv", "replicas.csv", "decisions.csv"]) {
        assert.equal(
          readFileSync(join(again, file), "utf8"),
          readFileSync(join(first, file), "utf8"),
          `${preset} ${file}`,
        );
      }
    }
  });

  void it("--no-charts writes timeline.csv but no chart", async () => {
    const out = join(scratch, "no-charts");
    const result = await cli(
      "simulate",
      "--preset",
      "azure-conv-baseline-h100",
      ...SMALL,
      "--no-charts",
      "--out",
      out,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.ok(existsSync(join(out, "timeline.csv")));
    assert.ok(!existsSync(join(out, "timeline.svg")) && !existsSync(join(out, "timeline.png")));
  });
});
