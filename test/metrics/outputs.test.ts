/** What a run's output files hold when loaded as data: one header, one convention for missing values. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { RequestMetricsCollector } from "../../src/metrics/collector.ts";
import { buildRunSummary, summaryToCsvRow } from "../../src/metrics/summary.ts";
import { buildTimeline, IntervalCounter, timelineCsv } from "../../src/metrics/timeline.ts";
import type { RequestRecord } from "../../src/metrics/types.ts";
import {
  formatUpstreamSummaryCsv,
  pandasCsvFloat,
  upstreamSummaryRow,
  writeUpstreamDetailedCsv,
} from "../../src/metrics/writers.ts";
import { UpstreamOutputs } from "../../src/simulate/upstream-outputs.ts";
import { parseCsv } from "../cli/helpers.ts";

const directory = mkdtempSync(join(tmpdir(), "splitscale-outputs-"));
after(() => rmSync(directory, { recursive: true, force: true }));

function record(id: number, arrival_s: number): RequestRecord {
  return {
    id,
    arrival_s,
    prompt_tokens: 100,
    output_tokens: 5,
    queue_s: 0,
    ttft_s: 0.1,
    e2e_s: 0.5,
    tbt_s: 0.1,
    nth_token_overhead_s: 0,
    preemptions: 0,
  };
}

/** Header and rows of a CSV text, checking every row has the header's column count. */
function table(text: string): { header: string[]; rows: string[][] } {
  const [header = [], ...rows] = parseCsv(text);
  for (const row of rows) assert.equal(row.length, header.length, `row ${row.join(",")}`);
  return { header, rows };
}

void describe("upstream CSVs (--splitwise-config)", () => {
  const emptyColumns = {
    request_ids: [],
    response_times: [],
    queue_times: [],
    ttft_times: [],
    tbt_times: [],
    nth_token_overheads: [],
    prompt_sizes: [],
    token_sizes: [],
  };

  void it("write a missing statistic as an empty cell, as pandas to_csv does, never nan", () => {
    const text = formatUpstreamSummaryCsv([upstreamSummaryRow(emptyColumns)]);
    assert.ok(!/nan/i.test(text.split("\n")[1]!), text);
    const { header, rows } = table(text);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]![0], "0");
    for (let column = 1; column < header.length; column++) assert.equal(rows[0]![column], "", header[column]);
  });

  void it("write NaN in detailed/0.csv as an empty cell and keep Python's repr otherwise", () => {
    const path = join(directory, "0.csv");
    writeUpstreamDetailedCsv(path, [{ ...record(3, 1), tbt_s: NaN, queue_s: 1e-5 }]);
    const { rows } = table(readFileSync(path, "utf8"));
    assert.deepEqual(rows, [["3.0", "0.5", "1e-05", "0.1", "", "0.0", "100.0", "5.0"]]);
    assert.equal(pandasCsvFloat(Infinity), "inf");
  });

  void it("of a run without completed requests hold empty cells", () => {
    const outputs = new UpstreamOutputs();
    const out = mkdtempSync(join(directory, "upstream-"));
    outputs.write(out, []);
    const summary = readFileSync(join(out, "upstream", "summary.csv"), "utf8");
    assert.ok(!summary.includes("nan"), summary);
    assert.equal(table(summary).rows.length, 1);
  });
});

void describe("summary.csv", () => {
  function summary(withScaling: boolean): ReturnType<typeof summaryToCsvRow> {
    const collector = new RequestMetricsCollector(() => ({ ttft_s: 0.1, tbt_s: 0.1 }));
    collector.noteArrival(0);
    collector.record(record(0, 0));
    return summaryToCsvRow(
      buildRunSummary({
        collector,
        sim_end_s: 10,
        ...(withScaling
          ? {
              scaling: {
                policy: "sla",
                events: 2,
                decisions: 1,
                max_replicas: 3,
                final_replicas: 2,
                gpu_seconds_by_state: { starting: 1, active: 2, draining: 3, unassigned: 0 },
              },
            }
          : {}),
      }),
    );
  }

  void it("has the same header with and without scaling (missing scaling: empty scaling_* cells)", () => {
    const scaled = summary(true);
    const fixed = summary(false);
    assert.equal(fixed.header, scaled.header);
    const names = fixed.header.split(",");
    const values = parseCsv(fixed.row)[0]!;
    assert.equal(values.length, names.length);
    const scalingColumns = names.filter((name) => name.startsWith("scaling_"));
    assert.equal(scalingColumns.length, 9);
    for (const name of scalingColumns) assert.equal(values[names.indexOf(name)], "", name);
    assert.ok(!names.includes("scaling"));
  });
});

void describe("timeline.csv with a fractional interval", () => {
  const collector = new RequestMetricsCollector(() => ({ ttft_s: 0.1, tbt_s: 0.1 }));
  const arrivals = new IntervalCounter(0.1);
  for (let k = 0; k < 10; k++) {
    const time = k / 10 + 0.05;
    collector.noteArrival(time);
    arrivals.add(time);
    collector.record({ ...record(k, time), ttft_s: 0.01, e2e_s: 0.02 });
  }
  const rows = buildTimeline({
    interval_s: 0.1,
    warmup_s: 0,
    end_s: 1,
    arrivals,
    columns: collector.columns(),
    instances: [{ start_s: 0, end_s: 1, weight: 1 }],
    servers: [{ start_s: 0, end_s: 1, weight: 8 }],
  });

  void it("writes the decimal interval boundaries (0.3, not 0.30000000000000004), contiguous", () => {
    assert.deepEqual(
      rows.map((row) => row.start_s),
      [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    );
    for (let k = 0; k + 1 < rows.length; k++) assert.equal(rows[k]!.end_s, rows[k + 1]!.start_s);
    assert.equal(rows.at(-1)!.end_s, 1);
    assert.ok(!/0000000|99999/.test(timelineCsv(rows)), timelineCsv(rows));
  });

  void it("divides by the exact interval length: one arrival per 0.1 s is a rate of 10/s", () => {
    for (const row of rows) {
      assert.equal(row.arrived, 1);
      assert.equal(row.arrival_rate, 10);
      assert.equal(row.throughput, 10);
      assert.equal(row.instances, 1);
      assert.equal(row.gpus, 8);
    }
  });

  void it("time-averages whole-row occupancy exactly (three instances are 3, not 3.0000000000000004)", () => {
    const three = buildTimeline({
      interval_s: 0.1,
      warmup_s: 0,
      end_s: 1,
      arrivals: new IntervalCounter(0.1),
      columns: new RequestMetricsCollector(() => ({ ttft_s: 0.1, tbt_s: 0.1 })).columns(),
      instances: [0, 1, 2].map(() => ({ start_s: 0, end_s: 1, weight: 1 })),
      servers: [0, 1, 2].map(() => ({ start_s: 0, end_s: 1, weight: 8 })),
    });
    for (const row of three) {
      assert.equal(row.instances, 3);
      assert.equal(row.gpus, 24);
    }
  });

  void it("counts a time on a boundary in the row that starts there (10.3 / 0.1 is 102.99999999999999)", () => {
    const counter = new IntervalCounter(0.1);
    counter.add(10.3);
    counter.add(0.3);
    assert.equal(counter.at(103), 1);
    assert.equal(counter.at(3), 1);
    const onBoundary = new RequestMetricsCollector(() => ({ ttft_s: 0.1, tbt_s: 0.1 }));
    const boundaryArrivals = new IntervalCounter(0.1);
    onBoundary.noteArrival(0.3);
    boundaryArrivals.add(0.3);
    onBoundary.record({ ...record(0, 0.3), ttft_s: 0.01, e2e_s: 0.3 });
    const timeline = buildTimeline({
      interval_s: 0.1,
      warmup_s: 0,
      end_s: 1,
      arrivals: boundaryArrivals,
      columns: onBoundary.columns(),
      instances: [],
      servers: [],
    });
    const row = (time: number): number => timeline.findIndex((r) => r.start_s === time);
    assert.deepEqual(
      timeline.map((r) => r.arrived),
      [0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
    );
    assert.equal(timeline[row(0.3)]!.completed, 1);
    // It completes at 0.6: the row starting at 0.6 counts it.
    assert.equal(timeline[row(0.6)]!.throughput, 10);
  });
});
