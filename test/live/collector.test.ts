/**
 * The metrics collector over HTTP: a good page, a partly bad page (used, bad lines reported), a
 * garbage page, a page of something else, an unreachable worker, a 500, a worker that never answers,
 * staleness (missing, never zero), GPU utilization from a busy-seconds counter across a restart,
 * and fleet latency quantiles from histograms merged across workers.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { MetricsCollector, DEFAULT_COLLECTOR_OPTIONS } from "../../src/live/collector.ts";
import { memoryLogger } from "../../src/live/log.ts";
import { COUNTERS, GAUGES } from "../../src/policy/types.ts";
import { FakeWorker } from "./helpers.ts";

const started: { stop(): Promise<void> }[] = [];
void after(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

async function fakeWorker(page: string, status = 200): Promise<FakeWorker> {
  const worker = await new FakeWorker().start();
  worker.metricsPage = page;
  worker.metricsStatus = status;
  started.push(worker);
  return worker;
}

const GOOD = [
  "# TYPE vllm:num_requests_running gauge",
  'vllm:num_requests_running{model_name="m"} 3',
  'vllm:num_requests_waiting{model_name="m"} 1',
  'vllm:kv_cache_usage_perc{model_name="m"} 0.4',
  'vllm:generation_tokens_total{model_name="m"} 100',
  'vllm:time_to_first_token_seconds_bucket{model_name="m",le="0.1"} 8',
  'vllm:time_to_first_token_seconds_bucket{model_name="m",le="1"} 10',
  'vllm:time_to_first_token_seconds_bucket{model_name="m",le="+Inf"} 10',
  'vllm:time_to_first_token_seconds_count{model_name="m"} 10',
  'vllm:time_to_first_token_seconds_sum{model_name="m"} 1',
  "",
].join("\n");

void describe("MetricsCollector", () => {
  void it("reads good pages, uses the good part of bad ones, and reports each failure per worker", async () => {
    const good = await fakeWorker(GOOD);
    const partly = await fakeWorker(
      `${GOOD}vllm:num_requests_waiting{model_name="m" 7\nthis line is nonsense\n`,
    );
    const garbage = await fakeWorker("<html><body>502 Bad Gateway</body></html>");
    const other = await fakeWorker("node_exporter_build_info 1\nprocess_cpu_seconds_total 3\n");
    const failing = await fakeWorker(GOOD, 500);
    const gone = await new FakeWorker().start();
    const goneUrl = gone.url;
    await gone.stop();
    const hang = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((resolve) => hang.listen(0, "127.0.0.1", resolve));
    started.push({
      stop: () => new Promise<void>((resolve) => (hang.closeAllConnections(), hang.close(() => resolve()))),
    });
    const hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;

    const log = memoryLogger();
    const collector = new MetricsCollector({ ...DEFAULT_COLLECTOR_OPTIONS, timeout_s: 0.3 }, log);
    const targets = [
      { id: "good", url: `${good.url}/metrics` },
      { id: "partly", url: `${partly.url}/metrics` },
      { id: "garbage", url: `${garbage.url}/metrics` },
      { id: "other", url: `${other.url}/metrics` },
      { id: "failing", url: `${failing.url}/metrics` },
      { id: "gone", url: `${goneUrl}/metrics` },
      { id: "hang", url: `${hangUrl}/metrics` },
    ];
    const before = Date.now();
    await collector.scrapeAll(targets);
    assert.ok(Date.now() - before < 2000, "a worker that never answers costs one timeout, not a stall");

    const metrics = collector.metricsFor("good")!;
    assert.equal(metrics.gauges[GAUGES.running], 3);
    assert.equal(metrics.gauges[GAUGES.concurrent], 4);
    assert.equal(metrics.counters[COUNTERS.generationTokens], 100);
    const partial = collector.metricsFor("partly")!;
    assert.equal(partial.gauges[GAUGES.waiting], 1, "the well-formed waiting sample is used");
    assert.deepEqual(collector.status("partly")!.badLines.length, 2);
    assert.match(collector.status("partly")!.badLines[0]!, /^line 11: /);

    for (const id of ["garbage", "other", "failing", "gone", "hang"])
      assert.equal(collector.metricsFor(id), undefined, `${id}: missing, not zero`);
    assert.match(
      collector.status("garbage")!.lastError!,
      /malformed metrics page \(no valid sample; line 1: /,
    );
    assert.match(collector.status("other")!.lastError!, /no engine metrics on the page \(2 samples/);
    assert.equal(collector.status("failing")!.lastError, "HTTP 500");
    assert.match(collector.status("gone")!.lastError!, /ECONNREFUSED/);
    assert.match(collector.status("hang")!.lastError!, /timeout|aborted/i);
    assert.equal(collector.scrapeErrors, 5);
    // One log line per worker and problem, not one per scrape.
    await collector.scrapeAll(targets);
    const warnings = log.lines.filter((line) => line.includes("cannot use metrics of worker gone"));
    assert.equal(warnings.length, 1);
    assert.equal(collector.status("gone")!.consecutiveFailures, 2);
  });

  void it("treats a worker not scraped for longer than the staleness as missing, and forgets removed workers", () => {
    let now = 1_000_000;
    const collector = new MetricsCollector(
      { ...DEFAULT_COLLECTOR_OPTIONS, staleness_s: 5 },
      memoryLogger(),
      () => now,
    );
    collector.ingest({ id: "w", url: "x" }, GOOD);
    assert.ok(collector.metricsFor("w") !== undefined);
    now += 4000;
    assert.ok(collector.metricsFor("w") !== undefined);
    now += 2000;
    assert.equal(collector.metricsFor("w"), undefined, "stale: missing");
    collector.ingest({ id: "w", url: "x" }, GOOD);
    assert.ok(collector.metricsFor("w") !== undefined);
  });

  void it("derives GPU utilization and token rates from counters, across a worker restart", () => {
    let now = 0;
    const collector = new MetricsCollector(DEFAULT_COLLECTOR_OPTIONS, memoryLogger(), () => now);
    const page = (busy: number, tokens: number) =>
      `vllm:num_requests_running 1\nsplitscale:gpu_busy_seconds_total ${busy}\nvllm:generation_tokens_total ${tokens}\n`;
    collector.ingest({ id: "w", url: "x" }, page(10, 1000));
    assert.equal(
      collector.metricsFor("w")!.gauges[GAUGES.gpuUtilization],
      undefined,
      "one sample: no rate yet",
    );
    now = 10_000;
    collector.ingest({ id: "w", url: "x" }, page(15, 1500));
    assert.equal(collector.metricsFor("w")!.gauges[GAUGES.gpuUtilization], 50);
    assert.deepEqual(collector.rates("w"), { generation_tokens_per_s: 50 });
    now = 20_000;
    collector.ingest({ id: "w", url: "x" }, page(3, 200)); // restarted: counters from zero
    assert.equal(collector.metricsFor("w")!.gauges[GAUGES.gpuUtilization], 40, "(5 + 3) busy s over 20 s");
    assert.deepEqual(collector.rates("w"), { generation_tokens_per_s: 35 });
  });

  void it("merges workers' TTFT histograms into fleet quantiles", async () => {
    const a = await fakeWorker(GOOD);
    const b = await fakeWorker(GOOD.replace(/le="0.1"} 8/, 'le="0.1"} 0'));
    const collector = new MetricsCollector(DEFAULT_COLLECTOR_OPTIONS, memoryLogger());
    await collector.scrapeAll([
      { id: "a", url: `${a.url}/metrics` },
      { id: "b", url: `${b.url}/metrics` },
    ]);
    // 20 observations: 8 <= 0.1 s, 12 in (0.1, 1]: the median lies in the second bucket.
    const { ttft_s } = collector.fleetQuantiles(0.5);
    assert.ok(ttft_s !== undefined && ttft_s > 0.1 && ttft_s < 1, String(ttft_s));
  });
});
