import assert from "node:assert/strict";
import { test } from "node:test";

import { RequestMetricsCollector } from "../../src/metrics/collector.ts";
import { buildRunSummary } from "../../src/metrics/summary.ts";
import { formatSummaryTable, formatTable, wrapText } from "../../src/report/table.ts";

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
  assert.doesNotMatch(text, /autoscaling/, "a fixed fleet has no autoscaling table");

  const scaled = formatSummaryTable(
    buildRunSummary({
      collector,
      gpu_hours: 2,
      scaling: {
        policy: "hpa",
        events: 7,
        decisions: 5,
        max_replicas: 4,
        final_replicas: 2,
        gpu_seconds_by_state: { starting: 360, active: 6480, draining: 360, unassigned: 0 },
      },
    }),
  );
  assert.match(scaled, /policy\s+│\s+hpa/);
  assert.match(scaled, /replicas peak \/ final\s+│\s+4 \/ 2/);
  assert.match(scaled, /target changes\s+│\s+5/);
  assert.match(scaled, /scaling actions\s+│\s+7/);
  assert.match(scaled, /GPU-hours active\s+│\s+1\.800 \(90\.0 %\)/);
  assert.match(scaled, /GPU-hours starting\s+│\s+0\.100 \(5\.0 %\)/);
  assert.doesNotMatch(scaled, /unassigned/, "shown only when servers had unused GPUs");
});

void test("formatTable wraps long text columns at spaces to fit maxWidth, keeping numbers whole", () => {
  const description = "a fairly long description that would not fit on a narrow terminal at all";
  const rows = [
    ["short", description, 123456],
    ["second", "fits", 7],
  ];
  const text = formatTable(["name", "description", "n"], rows, { style: "ascii", maxWidth: 44 });
  const lines = text.split("\n");
  for (const line of lines) assert.equal(line.length, 44, line);
  assert.deepEqual(lines, [
    "+--------+------------------------+--------+",
    "| name   | description            |      n |",
    "+--------+------------------------+--------+",
    "| short  | a fairly long          | 123456 |",
    "|        | description that would |        |",
    "|        | not fit on a narrow    |        |",
    "|        | terminal at all        |        |",
    "| second | fits                   |      7 |",
    "+--------+------------------------+--------+",
  ]);
  // No words lost or reordered.
  const wrapped = lines
    .slice(3, 7)
    .map((line) => line.split("|")[2]!.trim())
    .join(" ");
  assert.equal(wrapped, description);
  // Wide enough: unchanged; a table of numbers that cannot fit is left as it is.
  assert.equal(
    formatTable(["name", "description", "n"], rows, { maxWidth: 500 }),
    formatTable(["name", "description", "n"], rows),
  );
  const numbers = formatTable(["a", "b"], [[123456789, 987654321]], { maxWidth: 10, style: "ascii" });
  assert.equal(numbers.split("\n")[3], "| 123456789 | 987654321 |");
});

void test("wrapText cuts words longer than the width and keeps short text whole", () => {
  assert.deepEqual(wrapText("abc", 5), ["abc"]);
  assert.deepEqual(wrapText("one two three", 7), ["one two", "three"]);
  assert.deepEqual(wrapText("abcdefghij kl", 4), ["abcd", "efgh", "ij", "kl"]);
  assert.deepEqual(wrapText("x abcdefghij", 4), ["x", "abcd", "efgh", "ij"]);
});
