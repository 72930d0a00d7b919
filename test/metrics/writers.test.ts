import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import {
  formatUpstreamSummaryCsv,
  pythonFloatRepr,
  RequestsCsvWriter,
  upstreamSummaryRow,
  writeUpstreamDetailedCsv,
} from "../../src/metrics/writers.ts";
import type { RequestRecord } from "../../src/metrics/types.ts";

const directory = mkdtempSync(join(tmpdir(), "splitscale-writers-"));
after(() => rmSync(directory, { recursive: true, force: true }));

function record(id: number): RequestRecord {
  return {
    id,
    arrival_s: id * 0.1,
    prompt_tokens: 512,
    output_tokens: 32,
    queue_s: 0,
    ttft_s: 0.25 + id * 1e-7,
    e2e_s: 1.5,
    tbt_s: 1 / 3,
    nth_token_overhead_s: 0.001,
    preemptions: id % 3,
  };
}

void test("requests.csv streams every row across flushes", () => {
  const path = join(directory, "requests.csv");
  const writer = new RequestsCsvWriter(path);
  for (let id = 0; id < 5000; id++) writer.write(record(id));
  writer.close();
  writer.close();
  assert.throws(() => writer.write(record(0)));
  const lines = readFileSync(path, "utf8").trimEnd().split("\n");
  assert.equal(lines.length, 5001);
  assert.equal(
    lines[0],
    "id,arrival_s,prompt_tokens,output_tokens,queue_s,ttft_s,tbt_s,e2e_s,nth_token_overhead_s,preemptions",
  );
  assert.equal(lines[2], "1,0.1,512,32,0,0.2500001,0.3333333333333333,1.5,0.001,1");
  assert.equal(Number(lines[4000]!.split(",")[5]), record(3999).ttft_s);
});

void test("python float repr matches Python", () => {
  const cases: [number, string][] = [
    [0, "0.0"],
    [1, "1.0"],
    [374, "374.0"],
    [0.1, "0.1"],
    [1e-4, "0.0001"],
    [1e-5, "1e-05"],
    [1.5e-7, "1.5e-07"],
    [1e15, "1000000000000000.0"],
    [1e16, "1e+16"],
    [-2.5, "-2.5"],
    [NaN, "nan"],
    [Infinity, "inf"],
  ];
  for (const [value, expected] of cases) assert.equal(pythonFloatRepr(value), expected);
});

void test("upstream detailed CSV has upstream's header and Python formatting", () => {
  const path = join(directory, "0.csv");
  writeUpstreamDetailedCsv(path, [record(0)]);
  assert.equal(
    readFileSync(path, "utf8"),
    "request_ids,response_times,queue_times,ttft_times,tbt_times,nth_token_overheads,prompt_sizes,token_sizes\n" +
      "0.0,1.5,0.0,0.25,0.3333333333333333,0.001,512.0,32.0\n",
  );
});

void test("upstream summary row reproduces upstream's columns and values", () => {
  // ex_baseline_h_example: detailed/0.csv and its summary.csv.
  const row = upstreamSummaryRow({
    request_ids: [0, 1, 2],
    response_times: [1.7447429609198237, 0.49925474455559815, 0.7818727274953154],
    queue_times: [0, 0, 0],
    ttft_times: [0.6495982770284172, 0.25196400948334485, 0.25196400948334485],
    tbt_times: [0.034223271371606453, 0.030911341884031662, 0.03311929487574816],
    nth_token_overheads: [0, 0, 0],
    prompt_sizes: [4096, 2048, 2048],
    token_sizes: [32, 8, 16],
  });
  const metrics = [
    "request_ids",
    "response_times",
    "queue_times",
    "ttft_times",
    "tbt_times",
    "nth_token_overheads",
    "prompt_sizes",
    "token_sizes",
  ];
  const statistics = ["mean", "std", "min", "max", "median", "p50", "p90", "p95", "p99", "p999", "geomean"];
  assert.deepEqual(row.header, [
    "application_id",
    ...metrics.flatMap((metric) => statistics.map((statistic) => `${metric}_${statistic}`)),
  ]);
  const value = (column: string): number => row.values[row.header.indexOf(column)]!;
  assert.equal(value("request_ids_std"), 0.816496580927726);
  assert.equal(value("request_ids_p999"), 1.9980000000000002);
  assert.equal(value("request_ids_geomean"), 0);
  assert.equal(value("response_times_p95"), 1.6484559375773729);
  assert.equal(value("ttft_times_std"), 0.18744659134217773);
  assert.equal(value("tbt_times_p99"), 0.03420119184168929);
  assert.equal(value("prompt_sizes_std"), 965.4364585800329);
  assert.equal(value("token_sizes_p999"), 31.968000000000004);
  assert.ok(Math.abs(value("response_times_geomean") / 0.8798255577000585 - 1) < 1e-14);

  const text = formatUpstreamSummaryCsv([row]);
  const [header, values] = text.trimEnd().split("\n");
  assert.equal(header, row.header.join(","));
  assert.ok(values!.startsWith("0,1.0,0.816496580927726,0.0,2.0,1.0,1.0,1.8,"));
});
