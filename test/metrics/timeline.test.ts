import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { RequestMetricsCollector } from "../../src/metrics/collector.ts";
import { percentiles } from "../../src/metrics/percentile.ts";
import {
  buildTimeline,
  IntervalCounter,
  MAX_TIMELINE_ROWS,
  TIMELINE_COLUMNS,
  timelineCsv,
} from "../../src/metrics/timeline.ts";
import type { RequestRecord, UnloadedLatencyFn } from "../../src/metrics/types.ts";

// Unloaded TTFT 0.1 s and TBT 0.01 s: the Splitwise per-request SLO is then TTFT <= 0.6 s, TBT <= 0.05 s.
const unloaded: UnloadedLatencyFn = () => ({ ttft_s: 0.1, tbt_s: 0.01 });

function request(id: number, arrival_s: number, ttft_s: number, e2e_s: number, tbt_s = 0.02): RequestRecord {
  return {
    id,
    arrival_s,
    prompt_tokens: 100,
    output_tokens: 10 + id,
    queue_s: ttft_s / 2,
    ttft_s,
    e2e_s,
    tbt_s,
    nth_token_overhead_s: 0,
    preemptions: 0,
  };
}

/** Arrivals and completions fed as the simulation feeds them. */
function collect(
  records: readonly RequestRecord[],
  unfinishedArrivals: readonly number[],
  interval: number,
  warmup_s = 0,
): { collector: RequestMetricsCollector; arrivals: IntervalCounter } {
  const collector = new RequestMetricsCollector(unloaded, { warmup_s });
  const arrivals = new IntervalCounter(interval);
  for (const time of [...records.map((r) => r.arrival_s), ...unfinishedArrivals]) {
    collector.noteArrival(time);
    if (time >= warmup_s) arrivals.add(time);
  }
  for (const record of records) collector.record(record);
  return { collector, arrivals };
}

void describe("timeline", () => {
  // Interval 0 [0,60): three requests, one too slow for the SLO. Interval 1 [60,120): two requests
  // and one that never finished. Interval 2 [120,150): nothing arrives; one request completes there.
  const records = [
    request(0, 1, 0.2, 5),
    request(1, 10, 0.3, 20),
    request(2, 59.5, 2.0, 65), // TTFT 2 s > 0.6 s: misses; completes in interval 2 (at 124.5 s)
    request(3, 60, 0.1, 1),
    request(4, 100, 0.4, 10),
  ];
  const { collector, arrivals } = collect(records, [110], 60);
  const rows = buildTimeline({
    interval_s: 60,
    warmup_s: 0,
    end_s: 150,
    arrivals,
    columns: collector.columns(),
    instances: [
      { start_s: 0, end_s: 150, weight: 1 },
      { start_s: 30, end_s: 90, weight: 1 },
    ],
    servers: [
      { start_s: 0, end_s: 150, weight: 8 },
      { start_s: 30, end_s: 90, weight: 8 },
    ],
  });

  void it("has one row per interval up to the end of the run (the last one partial)", () => {
    assert.deepEqual(
      rows.map((row) => [row.start_s, row.end_s]),
      [
        [0, 60],
        [60, 120],
        [120, 150],
      ],
    );
  });

  void it("groups latency by arrival interval and counts unfinished arrivals as SLO misses", () => {
    assert.deepEqual(
      rows.map((row) => [row.arrived, row.completed]),
      [
        [3, 3],
        [3, 2],
        [0, 0],
      ],
    );
    assert.equal(rows[0]!.slo_attainment, 2 / 3);
    assert.equal(rows[1]!.slo_attainment, 2 / 3);
    assert.ok(Number.isNaN(rows[2]!.slo_attainment));
    assert.equal(rows[0]!.arrival_rate, 3 / 60);
    const [p50, p90, p99] = percentiles([0.2, 0.3, 2.0], [0.5, 0.9, 0.99]);
    assert.equal(rows[0]!.ttft_p50_s, p50);
    assert.equal(rows[0]!.ttft_p90_s, p90);
    assert.equal(rows[0]!.ttft_p99_s, p99);
    assert.equal(rows[1]!.e2e_p99_s, percentiles([1, 10], [0.99])[0]);
    assert.equal(rows[1]!.queue_p99_s, percentiles([0.05, 0.2], [0.99])[0]);
    assert.ok(Number.isNaN(rows[2]!.ttft_p50_s), "no arrivals: no percentile");
  });

  void it("counts throughput and output tokens by completion interval", () => {
    // Completions at 6, 30 (interval 0), 61, 110 (interval 1), 124.5 (interval 2).
    assert.equal(rows[0]!.throughput, 2 / 60);
    assert.equal(rows[1]!.throughput, 2 / 60);
    assert.equal(rows[2]!.throughput, 1 / 30);
    assert.equal(rows[0]!.output_tokens_per_s, (10 + 11) / 60);
    assert.equal(rows[2]!.output_tokens_per_s, 12 / 30);
  });

  void it("time-averages instances and GPUs over each interval; GPU-hours add up", () => {
    assert.deepEqual(
      rows.map((row) => row.instances),
      [1.5, 1.5, 1],
    );
    assert.deepEqual(
      rows.map((row) => row.gpus),
      [12, 12, 8],
    );
    const gpuHours = rows.reduce((sum, row) => sum + row.gpu_hours, 0);
    assert.ok(Math.abs(gpuHours - (8 * 150 + 8 * 60) / 3600) < 1e-12);
  });

  void it("starts at the warm-up's interval and leaves warm-up arrivals out", () => {
    const warm = collect(records, [110], 60, 60);
    const timeline = buildTimeline({
      interval_s: 60,
      warmup_s: 60,
      end_s: 150,
      arrivals: warm.arrivals,
      columns: warm.collector.columns(),
      instances: [],
      servers: [],
    });
    assert.deepEqual(
      timeline.map((row) => [row.start_s, row.arrived, row.completed]),
      [
        [60, 3, 2],
        [120, 0, 0],
      ],
    );
  });

  void it("starts its first row at a warm-up inside an interval, with rates and GPU-hours of that part", () => {
    const warm = collect(records, [110], 60, 90);
    const timeline = buildTimeline({
      interval_s: 60,
      warmup_s: 90,
      end_s: 150,
      arrivals: warm.arrivals,
      columns: warm.collector.columns(),
      instances: [{ start_s: 0, end_s: 150, weight: 1 }],
      servers: [{ start_s: 0, end_s: 150, weight: 8 }],
    });
    assert.deepEqual(
      timeline.map((row) => [row.start_s, row.end_s, row.arrived]),
      [
        [90, 120, 2],
        [120, 150, 0],
      ],
    );
    assert.equal(timeline[0]!.arrival_rate, 2 / 30);
    assert.equal(timeline[0]!.gpu_hours, (8 * 30) / 3600);
  });

  void it("counts a request arriving at the very end of the run, on an interval boundary, in the last row", () => {
    const { collector, arrivals } = collect([request(0, 1, 0.2, 5)], [120], 60);
    const timeline = buildTimeline({
      interval_s: 60,
      warmup_s: 0,
      end_s: 120,
      arrivals,
      columns: collector.columns(),
      instances: [],
      servers: [],
    });
    assert.equal(timeline.length, 2);
    assert.equal(
      timeline.reduce((sum, row) => sum + row.arrived, 0),
      2,
    );
    assert.equal(timeline[1]!.slo_attainment, 0, "the unfinished arrival is a miss");
  });

  void it("writes a CSV with one field per column and empty fields for NaN", () => {
    const lines = timelineCsv(rows).trimEnd().split("\n");
    assert.equal(lines[0], TIMELINE_COLUMNS.join(","));
    assert.equal(lines.length, 4);
    for (const line of lines) assert.equal(line.split(",").length, TIMELINE_COLUMNS.length);
    const last = lines[3]!.split(",");
    assert.equal(last[TIMELINE_COLUMNS.indexOf("ttft_p50_s")], "");
    assert.equal(last[TIMELINE_COLUMNS.indexOf("gpus")], "8");
  });

  void it("refuses an interval that is not a positive number of seconds", () => {
    for (const bad of [0, -1, Number.NaN, Infinity])
      assert.throws(() => new IntervalCounter(bad), /positive/);
  });
});

void describe("timeline of a run spanning years (a trace gap or epoch timestamps)", () => {
  const records = [request(0, 1, 0.2, 5), request(1, 1e9, 0.2, 5), request(2, 1e9 + 30, 0.2, 5)];
  const { collector, arrivals } = collect(records, [], 60);
  const end = 1e9 + 40;
  const rows = buildTimeline({
    interval_s: 60,
    warmup_s: 0,
    end_s: end,
    arrivals,
    columns: collector.columns(),
    instances: [{ start_s: 0, end_s: end, weight: 1 }],
    servers: [{ start_s: 0, end_s: end, weight: 8 }],
  });

  void it(`widens the interval (a whole multiple of the configured one) to at most ${MAX_TIMELINE_ROWS} rows`, () => {
    assert.ok(rows.length <= MAX_TIMELINE_ROWS && rows.length > MAX_TIMELINE_ROWS / 2, `${rows.length} rows`);
    const interval = rows[0]!.end_s - rows[0]!.start_s;
    assert.equal(interval % 60, 0);
    assert.equal(rows.at(-1)!.end_s, end);
  });

  void it("still counts every arrival and adds up the GPU-hours", () => {
    assert.equal(
      rows.reduce((sum, row) => sum + row.arrived, 0),
      3,
    );
    assert.equal(rows[0]!.arrived, 1);
    assert.equal(rows.at(-1)!.arrived, 2);
    const gpuHours = rows.reduce((sum, row) => sum + row.gpu_hours, 0);
    assert.ok(Math.abs(gpuHours - (8 * end) / 3600) < 1e-6 * gpuHours);
  });

  void it("keeps far-off intervals in the counter without filling the ones between", () => {
    const counter = new IntervalCounter(1);
    counter.add(3);
    counter.add(5e12);
    counter.add(5e12 + 0.5);
    assert.equal(counter.at(3), 1);
    assert.equal(counter.at(5e12), 2);
    assert.equal(counter.at(4), 0);
    const coarse = counter.coarsen(1000);
    assert.equal(coarse.interval_s, 1000);
    assert.equal(coarse.at(0), 1);
    assert.equal(coarse.at(5e9), 2);
  });
});
