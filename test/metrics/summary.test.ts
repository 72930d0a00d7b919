import assert from "node:assert/strict";
import { test } from "node:test";

import { RequestMetricsCollector } from "../../src/metrics/collector.ts";
import { buildRunSummary, summaryToCsvRow, summaryToJson } from "../../src/metrics/summary.ts";
import type { RunSummary } from "../../src/metrics/summary.ts";
import type { RequestRecord } from "../../src/metrics/types.ts";
import { parseCsv } from "../cli/helpers.ts";

function record(id: number, ttft_s: number): RequestRecord {
  return {
    id,
    arrival_s: id,
    prompt_tokens: 100,
    output_tokens: 5,
    queue_s: 0,
    ttft_s,
    e2e_s: ttft_s + 0.4,
    tbt_s: 0.1,
    nth_token_overhead_s: 0,
    preemptions: 0,
  };
}

function sampleSummary(): RunSummary {
  const collector = new RequestMetricsCollector(() => ({ ttft_s: 0.1, tbt_s: 0.1 }));
  for (let id = 0; id < 5; id++) collector.noteArrival(id);
  for (let id = 0; id < 4; id++) collector.record(record(id, 0.1 * (id + 1)));
  return buildRunSummary({
    collector,
    sim_end_s: 10,
    gpu_hours: 1.5,
    events: 1234,
    seed: 0,
    config_hash: "abc, def",
    extra: { policy: "static", "trace.rate": 2 },
  });
}

void test("summary counts, throughput and SLO", () => {
  const summary = sampleSummary();
  assert.deepEqual(summary.requests, {
    arrived: 5,
    completed: 4,
    unfinished: 1,
    rejected: 0,
    measured: 4,
    warmup_s: 0,
  });
  assert.equal(summary.ttft_s.max, 0.4);
  assert.equal(summary.throughput.requests_per_s, 0.4);
  assert.equal(summary.throughput.output_tokens_per_s, 2);
  // TTFT slowdowns 1, 2, 3, 4 (all ≤ 6) and TBT slowdown 1: the 4 completed meet, the unfinished one misses.
  assert.equal(summary.slo.attainment, 0.8);
  assert.equal(summary.slowdown.ttft.p50, 2.5);
  assert.equal(summary.cost_usd, null);
});

void test("JSON is deterministic, ends with a newline and writes NaN as null", () => {
  const first = summaryToJson(sampleSummary());
  assert.equal(first, summaryToJson(sampleSummary()));
  assert.ok(first.endsWith("}\n"));
  const keys = Object.keys(JSON.parse(first) as Record<string, unknown>);
  assert.deepEqual(keys.slice(0, 3), ["requests", "ttft_s", "tbt_s"]);
  assert.equal(keys.at(-1), "extra");

  const empty = buildRunSummary({ collector: new RequestMetricsCollector(() => ({ ttft_s: 1, tbt_s: 1 })) });
  const parsed = JSON.parse(summaryToJson(empty)) as RunSummary;
  assert.equal(parsed.ttft_s.p99, null);
  assert.equal(parsed.slo.attainment, null);
  assert.equal(parsed.throughput.requests_per_s, null);
  assert.ok(!summaryToJson(empty).includes("NaN"));
});

void test("CSV row has one value per column and pandas-friendly names", () => {
  const { header, row } = summaryToCsvRow(sampleSummary());
  const names = header.split(",");
  const values = parseCsv(row)[0] ?? [];
  assert.equal(values.length, names.length);
  assert.ok(!header.includes("\n") && !row.includes("\n"));
  for (const name of names) assert.match(name, /^[a-z0-9_]+$/);
  assert.equal(new Set(names).size, names.length);
  const value = (name: string): string => values[names.indexOf(name)]!;
  assert.equal(value("requests_arrived"), "5");
  assert.equal(value("ttft_s_p99"), String(sampleSummary().ttft_s.p99));
  assert.equal(value("slo_attainment"), "0.8");
  // TTFT slowdown p50 is 2.5, not below 2.
  assert.equal(value("slo_meets_splitwise_slo"), "false");
  assert.equal(value("cost_usd"), "");
  assert.equal(value("config_hash"), "abc, def");
  assert.ok(row.includes('"abc, def"'));
  assert.equal(value("extra_trace_rate"), "2");
  assert.equal(names.at(-1), "extra_trace_rate");
});
