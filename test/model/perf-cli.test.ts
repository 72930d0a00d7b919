import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parse } from "yaml";

import { PACKAGE_ROOT } from "../../src/paths.ts";

const BIN = join(PACKAGE_ROOT, "bin", "splitscale.js");
const FIXTURE = join(PACKAGE_ROOT, "test", "model", "fixtures", "llama2-70b-h100-tp8.csv");
const run = (...args: string[]): string =>
  execFileSync(process.execPath, [BIN, ...args], { encoding: "utf8" });
const fail = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" });

void test("perf predict prints {ms} as JSON", () => {
  const out = run(
    "perf",
    "predict",
    "--model",
    "llama3-8b",
    "--gpu",
    "h100",
    "--phase",
    "decode",
    "--batch",
    "32",
    "--context",
    "2048",
  );
  const result = JSON.parse(out) as { ms: number };
  assert.deepEqual(Object.keys(result), ["ms"]);
  assert.ok(result.ms > 5 && result.ms < 50, `${result.ms}`);
  const tp2 = JSON.parse(
    run(
      "perf",
      "predict",
      "--model",
      "llama3-8b",
      "--gpu",
      "h100-80gb",
      "--tp",
      "2",
      "--phase",
      "decode",
      "--batch",
      "32",
      "--context",
      "2048",
    ),
  ) as { ms: number };
  assert.ok(tp2.ms < result.ms);
});

void test("perf predict with --profile returns the measurement at a measured point", () => {
  const out = run(
    "perf",
    "predict",
    "--model",
    "llama2-70b",
    "--gpu",
    "h100",
    "--tp",
    "8",
    "--phase",
    "prefill",
    "--batch",
    "1",
    "--tokens",
    "4096",
    "--profile",
    FIXTURE,
    "--explain",
  );
  const result = JSON.parse(out) as { ms: number; source: string; per_gpu: { flops: { total: number } } };
  assert.ok(Math.abs(result.ms / 390.2908279560506 - 1) < 1e-12);
  assert.equal(result.source, "profile");
  assert.ok(result.per_gpu.flops.total > 0);
});

void test("perf predict explains bad input with exit code 2", () => {
  const unknown = fail(
    "perf",
    "predict",
    "--model",
    "llama3-8c",
    "--gpu",
    "h100",
    "--phase",
    "decode",
    "--batch",
    "1",
    "--context",
    "9",
  );
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown model "llama3-8c"\. Did you mean "llama3-8b"\?/);
  const gpu = fail(
    "perf",
    "predict",
    "--model",
    "llama3-8b",
    "--gpu",
    "h1000",
    "--phase",
    "decode",
    "--batch",
    "1",
    "--context",
    "9",
  );
  assert.equal(gpu.status, 2);
  assert.match(gpu.stderr, /unknown GPU "h1000"\. Did you mean "h100"\?/);
  const heads = fail(
    "perf",
    "predict",
    "--model",
    "qwen2.5-7b",
    "--gpu",
    "h100",
    "--tp",
    "8",
    "--phase",
    "decode",
    "--batch",
    "1",
    "--context",
    "9",
  );
  assert.equal(heads.status, 2);
  assert.match(heads.stderr, /tensor parallelism 8 does not divide qwen2\.5-7b's 28 attention heads/);
  const memory = fail(
    "perf",
    "predict",
    "--model",
    "llama3-70b",
    "--gpu",
    "h100",
    "--phase",
    "decode",
    "--batch",
    "1",
    "--context",
    "9",
  );
  assert.equal(memory.status, 2);
  assert.match(
    memory.stderr,
    /needs 131\.4 GiB of weights but 1 x h100-sxm-80gb has 80\.0 GiB; use a larger --tp \(at least 2\)/,
  );
  const phase = fail(
    "perf",
    "predict",
    "--model",
    "llama3-8b",
    "--gpu",
    "h100",
    "--phase",
    "decode",
    "--batch",
    "1",
    "--tokens",
    "9",
  );
  assert.equal(phase.status, 2);
  assert.match(phase.stderr, /--phase decode takes --context/);
});

void test("perf calibrate reports the error before and after and writes the factors", () => {
  const dir = mkdtempSync(join(tmpdir(), "splitscale-perf-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, "efficiency.yaml");
  const table = run("perf", "calibrate", "--profile", FIXTURE, "--out", out);
  assert.match(table, /prefill │\s+13 │ 51\.8%\s+│ 76\.0%\s+│ 14\.6%/);
  assert.match(table, /decode {2}│\s+19 │ 65\.9%\s+│ 75\.0%\s+│ 2\.1%/);
  const efficiency = parse(readFileSync(out, "utf8")) as { decode: { overhead_s: number } };
  assert.ok(efficiency.decode.overhead_s > 0.01);
  // The written file feeds predict
  const calibrated = JSON.parse(
    run(
      "perf",
      "predict",
      "--model",
      "llama2-70b",
      "--gpu",
      "h100",
      "--tp",
      "8",
      "--phase",
      "decode",
      "--batch",
      "1",
      "--context",
      "576",
      "--efficiency",
      out,
    ),
  ) as { ms: number };
  assert.ok(Math.abs(calibrated.ms - 29.76) < 3, `${calibrated.ms}`);
});

void test("perf models and perf gpus list the catalogs", () => {
  const models = JSON.parse(run("perf", "models", "--json")) as { name: string }[];
  assert.ok(models.some((m) => m.name === "mixtral-8x7b"));
  assert.match(run("perf", "gpus"), /mi300x-192gb/);
});
