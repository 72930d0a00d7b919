import assert from "node:assert/strict";
import { test } from "node:test";

import { RequestMetricsCollector } from "../../src/metrics/collector.ts";
import type { RequestRecord, UnloadedLatencyFn } from "../../src/metrics/types.ts";

const unloaded: UnloadedLatencyFn = () => ({ ttft_s: 0.1, tbt_s: 0.01 });

function request(id: number, overrides: Partial<RequestRecord> = {}): RequestRecord {
  return {
    id,
    arrival_s: id,
    prompt_tokens: 100 + id,
    output_tokens: 11,
    queue_s: 0.01,
    ttft_s: 0.2,
    e2e_s: 0.4,
    tbt_s: 0.02,
    nth_token_overhead_s: 0.005,
    preemptions: 1,
    ...overrides,
  };
}

void test("columns grow past the initial capacity and keep every row", () => {
  const collector = new RequestMetricsCollector(unloaded, { initial_capacity: 4 });
  for (let id = 0; id < 1000; id++) {
    collector.noteArrival(id);
    collector.record(request(id, { ttft_s: id / 1000 }));
  }
  const columns = collector.columns();
  assert.equal(columns.count, 1000);
  assert.ok(collector.allocatedRows >= 1000);
  assert.equal(columns.ttft_s.length, 1000);
  assert.equal(columns.ttft_s[999], 0.999);
  assert.equal(columns.prompt_tokens[999], 1099);
  assert.equal(columns.arrival_s[0], 0);
  assert.deepEqual(collector.counts(), {
    arrived: 1000,
    completed: 1000,
    measured_arrived: 1000,
    measured_completed: 1000,
  });
  assert.equal(collector.preemptions, 1000);
  assert.equal(collector.measuredOutputTokens, 11000);
  assert.equal(collector.last_completion_s, 999.4);
});

void test("slowdowns are computed against the unloaded latency at record time", () => {
  const collector = new RequestMetricsCollector(unloaded);
  collector.record(request(0));
  const columns = collector.columns();
  assert.equal(columns.ttft_slowdown[0], Math.fround(0.2 / 0.1));
  assert.equal(columns.tbt_slowdown[0], Math.fround(0.02 / 0.01));
  // unloaded e2e = 0.1 + 0.01 * (11 - 1) = 0.2
  assert.equal(columns.e2e_slowdown[0], Math.fround(0.4 / (0.1 + 0.01 * 10)));
});

void test("warm-up requests are counted but kept out of the statistics", () => {
  const forwarded: number[] = [];
  const collector = new RequestMetricsCollector(unloaded, {
    warmup_s: 5,
    sink: { write: (record) => forwarded.push(record.id) },
  });
  for (let id = 0; id < 10; id++) collector.noteArrival(id);
  for (let id = 0; id < 8; id++) collector.record(request(id));
  assert.deepEqual(collector.counts(), {
    arrived: 10,
    completed: 8,
    measured_arrived: 5,
    measured_completed: 3,
  });
  assert.deepEqual(Array.from(collector.columns().arrival_s), [5, 6, 7]);
  assert.deepEqual(forwarded, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(collector.preemptions, 8);
});
