import assert from "node:assert/strict";
import { test } from "node:test";

import { RequestMetricsCollector } from "../../src/metrics/collector.ts";
import { buildRunSummary } from "../../src/metrics/summary.ts";
import { formatSummaryTable, formatTable } from "../../src/report/table.ts";

void test("formatTable right-aligns numbers and keeps every line the same width", () => {
  const text = formatTable(
    ["name", "count"],
    [
      ["alpha", 1],
      ["b", 12345],
    ],
    { style: "ascii" },
  );
  const lines = text.split("\n");
  assert.deepEqual(lines, [
    "+-------+-------+",
    "| name  | count |",
    "+-------+-------+",
    "| alpha |     1 |",
    "| b     | 12345 |",
    "+-------+-------+",
  ]);
});

void test("formatTable box style and explicit alignment", () => {
  const text = formatTable(["a", "b"], [["x", "y"]], { align: ["right", "right"], title: "T" });
  const lines = text.split("\n");
  assert.equal(lines[0], "T");
  assert.equal(lines[1], "┌───┬───┐");
  assert.equal(new Set(lines.slice(1).map((line) => line.length)).size, 1);
});

void test("formatSummaryTable shows latencies in ms and the SLO attainment", () => {
  const collector = new RequestMetricsCollector(() => ({ ttft_s: 0.1, tbt_s: 0.01 }));
  collector.noteArrival(0);
  collector.record({
    id: 0,
    arrival_s: 0,
    prompt_tokens: 10,
    output_tokens: 2,
    queue_s: 0,
    ttft_s: 0.125,
    e2e_s: 0.14,
    tbt_s: 0.0075,
    nth_token_overhead_s: 0,
    preemptions: 0,
  });
  const text = formatSummaryTable(buildRunSummary({ collector, gpu_hours: 2, cost_usd: 9.5, wall_s: 0.5 }));
  assert.match(text, /TTFT\s+│\s+125\.0/);
  assert.match(text, /SLO attainment\s+│\s+100\.00 %/);
  assert.match(text, /\$9\.50/);
  assert.match(text, /energy\s+│\s+-/);
  assert.doesNotMatch(text, /refused/, "no refusal row when nothing was refused");
  const refused = formatSummaryTable(buildRunSummary({ collector, rejected: 3, wall_s: 0.5 }));
  assert.match(refused, /requests refused \(KV cache too small\)\s+│\s+3/);
});
