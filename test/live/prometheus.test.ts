/**
 * The hand-written Prometheus text parser and the aggregation on top of it: labels and escapes,
 * histograms (labelled, merged across workers by bucket), counters to rates with resets, and pages
 * that are partly or wholly garbage (bad lines are reported, never thrown).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import {
  CounterWindow,
  combineOf,
  histogramDelta,
  histogramOf,
  histogramQuantile,
  mergeHistograms,
  sumOf,
} from "../../src/live/prometheus/aggregate.ts";
import { ExpositionWriter } from "../../src/live/prometheus/exposition.ts";
import { labelKey, parseFloatStrict, parsePrometheusText } from "../../src/live/prometheus/parser.ts";
import { mapEngineMetrics } from "../../src/live/metrics-map.ts";
import { COUNTERS, GAUGES, HISTOGRAMS } from "../../src/policy/types.ts";

/** A trimmed page of a real vLLM V1 (0.10) server, two models on one replica. */
const VLLM_PAGE = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
vllm:num_requests_running{engine="0",model_name="other"} 1.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 2.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.25
vllm:kv_cache_usage_perc{engine="0",model_name="other"} 0.5
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 1234.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 5678.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="meta-llama/Llama-3.1-8B-Instruct"} 10.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="meta-llama/Llama-3.1-8B-Instruct"} 5.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 4.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.5",model_name="meta-llama/Llama-3.1-8B-Instruct"} 12.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 15.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 15.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 4.5
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="other"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.5",model_name="other"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="other"} 2.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="other"} 2.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="other"} 1.5
`;

void describe("parsePrometheusText", () => {
  void it("reads families, types, help, labels and values", () => {
    const page = parsePrometheusText(VLLM_PAGE);
    assert.deepEqual(page.errors, []);
    assert.equal(page.families.get("vllm:num_requests_running")?.type, "gauge");
    assert.equal(page.families.get("vllm:time_to_first_token_seconds")?.type, "histogram");
    assert.equal(page.families.get("vllm:time_to_first_token_seconds")?.samples.length, 10);
    assert.equal(page.families.get("vllm:prompt_tokens_total")?.help, "Number of prefill tokens processed.");
    assert.equal(
      page.samples.get("vllm:num_requests_running")?.[0]?.labels.model_name,
      "meta-llama/Llama-3.1-8B-Instruct",
    );
    assert.equal(page.sampleCount, 19);
  });

  void it("handles escapes, special values, timestamps, trailing commas, CRLF and comments", () => {
    const text = [
      "# a free comment",
      "# HELP x A help with a \\\\ backslash\\nand newline.",
      "# TYPE x counter",
      'x_total{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb",} 7 1700000000000\r',
      "y +Inf",
      "z -Inf",
      "w NaN",
      "v 1.5e3",
      "u{} 2",
      "  t   3  ",
      "# EOF",
      "after_eof 1",
    ].join("\n");
    const page = parsePrometheusText(text);
    assert.deepEqual(page.errors, []);
    const x = page.samples.get("x_total")![0]!;
    assert.deepEqual(x.labels, { path: "C:\\dir", quote: 'say "hi"', nl: "a\nb" });
    assert.equal(x.value, 7);
    assert.equal(x.timestamp_ms, 1700000000000);
    assert.equal(
      page.families.get("x")?.type,
      "counter",
      "OpenMetrics: a counter typed without _total owns x_total",
    );
    assert.equal(page.families.get("x")?.help, "A help with a \\ backslash\nand newline.");
    assert.equal(page.samples.get("y")![0]!.value, Infinity);
    assert.equal(page.samples.get("z")![0]!.value, -Infinity);
    assert.ok(Number.isNaN(page.samples.get("w")![0]!.value));
    assert.equal(page.samples.get("v")![0]!.value, 1500);
    assert.equal(page.samples.get("u")![0]!.value, 2);
    assert.equal(page.samples.get("t")![0]!.value, 3);
    assert.equal(page.samples.has("after_eof"), false);
  });

  void it("skips bad lines with their line numbers and keeps the good ones", () => {
    const text = [
      "good 1",
      "bad{ 2",
      'also_bad{a="x" 3',
      "no_value",
      "bad_value abc",
      "3starts_with_digit 1",
      'dup{a="1",a="2"} 1',
      "trailing 1 2 3",
      "# TYPE weird nonsense",
      "fine_too 4",
      "\u0000\u0001 binary",
    ].join("\n");
    const page = parsePrometheusText(text);
    assert.deepEqual([...page.samples.keys()].sort(), ["fine_too", "good"]);
    assert.deepEqual(
      page.errors.map((error) => error.line),
      [2, 3, 4, 5, 6, 7, 8, 9, 11],
    );
    assert.match(page.errors[3]!.message, /bad_value: bad value "abc"/);
    assert.match(page.errors[2]!.message, /no_value: missing value/);
    assert.match(page.errors[7]!.message, /unknown type "nonsense"/);
  });

  void it("never throws, whatever the bytes, and caps the errors it keeps", () => {
    const garbage = Array.from({ length: 500 }, (_, i) => `{{{ ${i} }}} "unterminated\\`).join("\n");
    const page = parsePrometheusText(garbage);
    assert.equal(page.sampleCount, 0);
    assert.equal(page.errors.length, 21);
    assert.match(page.errors[20]!.message, /480 more bad line/);
    for (const text of ["", "\n\n", "#", "# TYPE", "{}", "a{b=}", 'a{b="c"}', "\uFFFF", "a 1 b"])
      parsePrometheusText(text);
  });

  void it("parses floats as Prometheus does", () => {
    assert.equal(parseFloatStrict("+Inf"), Infinity);
    assert.equal(parseFloatStrict("-1e-3"), -0.001);
    assert.equal(parseFloatStrict(".5"), 0.5);
    assert.equal(parseFloatStrict("0x10"), 16);
    assert.equal(parseFloatStrict("1,5"), undefined);
    assert.equal(parseFloatStrict(""), undefined);
    assert.equal(parseFloatStrict("1.2.3"), undefined);
  });

  void it("reads prom-client's own output (labelled histograms included)", async () => {
    const registry = new Registry();
    const histogram = new Histogram({
      name: "req_seconds",
      help: "h",
      labelNames: ["route"],
      buckets: [0.1, 1],
      registers: [registry],
    });
    const counter = new Counter({
      name: "req_total",
      help: "c",
      labelNames: ["code"],
      registers: [registry],
    });
    const gauge = new Gauge({ name: "queue", help: "g", registers: [registry] });
    histogram.observe({ route: "a" }, 0.05);
    histogram.observe({ route: "a" }, 0.5);
    histogram.observe({ route: "b" }, 5);
    counter.inc({ code: "200" }, 3);
    counter.inc({ code: "429" });
    gauge.set(7);
    const page = parsePrometheusText(await registry.metrics());
    assert.deepEqual(page.errors, []);
    assert.equal(sumOf(page, "req_total"), 4);
    assert.equal(sumOf(page, "req_total", { code: "429" }), 1);
    assert.equal(sumOf(page, "queue"), 7);
    const a = histogramOf(page, "req_seconds", { route: "a" });
    assert.ok(a !== undefined && !("error" in a));
    assert.deepEqual(a.cumulative, [1, 2, 2]);
    assert.equal(a.count, 2);
    assert.equal(a.sum, 0.55);
    const both = histogramOf(page, "req_seconds");
    assert.ok(both !== undefined && !("error" in both));
    assert.deepEqual(both.cumulative, [1, 2, 3], "label sets summed by bucket");
  });

  void it("round-trips the engine's exposition writer", () => {
    const text = new ExpositionWriter()
      .gauge("vllm:num_requests_running", "r", [{ labels: { model_name: 'a "b"' }, value: 2 }])
      .histogram(
        "vllm:e2e_request_latency_seconds",
        "e",
        { model_name: "m" },
        { le: [1, Infinity], cumulative: [3, 4], count: 4, sum: 5.5 },
      )
      .toString();
    const page = parsePrometheusText(text);
    assert.deepEqual(page.errors, []);
    assert.equal(page.samples.get("vllm:num_requests_running")![0]!.labels.model_name, 'a "b"');
    const h = histogramOf(page, "vllm:e2e_request_latency_seconds");
    assert.ok(h !== undefined && !("error" in h));
    assert.deepEqual(h, { le: [1, Infinity], cumulative: [3, 4], count: 4, sum: 5.5 });
  });

  void it("labelKey ignores order and chosen labels", () => {
    assert.equal(labelKey({ b: "2", a: "1", le: "0.5" }, ["le"]), labelKey({ a: "1", b: "2" }));
  });
});

void describe("aggregation", () => {
  void it("sums, averages or maxes a gauge over label sets", () => {
    const page = parsePrometheusText(VLLM_PAGE);
    assert.equal(sumOf(page, "vllm:num_requests_running"), 4);
    assert.equal(combineOf(page, "vllm:kv_cache_usage_perc", "max"), 0.5);
    assert.equal(combineOf(page, "vllm:kv_cache_usage_perc", "mean"), 0.375);
    assert.equal(sumOf(page, "absent"), undefined);
  });

  void it("reports inconsistent histograms instead of inventing numbers", () => {
    const noInf = parsePrometheusText('h_bucket{le="1"} 1\nh_bucket{le="2"} 2\n');
    assert.deepEqual(histogramOf(noInf, "h"), { error: "h: no +Inf bucket (series {})" });
    const decreasing = parsePrometheusText('h_bucket{le="1"} 5\nh_bucket{le="+Inf"} 2\n');
    assert.match((histogramOf(decreasing, "h") as { error: string }).error, /decrease/);
    const badLe = parsePrometheusText('h_bucket{le="x"} 5\nh_bucket{le="+Inf"} 6\n');
    assert.match((histogramOf(badLe, "h") as { error: string }).error, /bad le "x"/);
    const noLe = parsePrometheusText("h_bucket 5\n");
    assert.match((histogramOf(noLe, "h") as { error: string }).error, /without an "le"/);
  });

  void it("merges histograms across workers by bucket (same and different layouts)", () => {
    const a = { le: [0.1, 1, Infinity], cumulative: [1, 3, 4], count: 4, sum: 2 };
    const b = { le: [0.1, 1, Infinity], cumulative: [0, 2, 2], count: 2, sum: 1 };
    assert.deepEqual(mergeHistograms([a, b]), {
      le: [0.1, 1, Infinity],
      cumulative: [1, 5, 6],
      count: 6,
      sum: 3,
    });
    const c = { le: [0.5, Infinity], cumulative: [2, 3], count: 3, sum: 1 };
    const merged = mergeHistograms([a, c])!;
    assert.deepEqual(merged.le, [0.1, 0.5, 1, Infinity]);
    // c contributes 0 at 0.1 (below its first bound), 2 at 0.5 and 1, 3 at +Inf; a holds 1 at 0.5.
    assert.deepEqual(merged.cumulative, [1, 3, 5, 7]);
    assert.equal(merged.count, 7);
    assert.equal(mergeHistograms([]), undefined);
  });

  void it("takes quantiles like histogram_quantile and deltas with resets", () => {
    const h = { le: [0.1, 0.5, 1, Infinity], cumulative: [10, 50, 90, 100], count: 100, sum: 40 };
    assert.equal(histogramQuantile(0.5, h), 0.5);
    assert.ok(Math.abs(histogramQuantile(0.3, h)! - 0.3) < 1e-12);
    assert.equal(histogramQuantile(0.99, h), 1, "the +Inf bucket answers with the largest finite bound");
    assert.equal(
      histogramQuantile(0.5, { le: [1, Infinity], cumulative: [0, 0], count: 0, sum: 0 }),
      undefined,
    );
    const past = { le: h.le, cumulative: [5, 25, 45, 50], count: 50, sum: 20 };
    assert.deepEqual(histogramDelta(h, past).cumulative, [5, 25, 45, 50]);
    const reset = { le: h.le, cumulative: [1, 1, 1, 1], count: 1, sum: 0.05 };
    assert.equal(
      histogramDelta(reset, past),
      reset,
      "a count that went down is a restart: the new totals are the delta",
    );
  });

  void it("turns counters into rates across resets", () => {
    const window = new CounterWindow(60);
    assert.equal(window.rate(), undefined);
    window.add(0, 100);
    window.add(10, 200);
    assert.equal(window.rate(), 10);
    window.add(20, 50); // restarted: 50 since the restart
    assert.equal(window.increase(), 150);
    assert.equal(window.rate(), 7.5);
    window.add(20, 60); // same timestamp: ignored
    window.add(30, Number.NaN); // not a number: ignored
    assert.equal(window.increase(), 150);
    window.add(200, 70); // older samples fall out of the window (one is kept to span it)
    assert.equal(window.increase(), 20);
  });
});

void describe("mapEngineMetrics", () => {
  void it("maps vLLM names onto the policy's names", () => {
    const { metrics, recognized, problems } = mapEngineMetrics(parsePrometheusText(VLLM_PAGE));
    assert.deepEqual(problems, []);
    assert.ok(recognized >= 6);
    assert.equal(metrics.gauges[GAUGES.running], 4);
    assert.equal(metrics.gauges[GAUGES.waiting], 2);
    assert.equal(metrics.gauges[GAUGES.concurrent], 6, "concurrent = running + waiting when not exposed");
    assert.equal(metrics.gauges[GAUGES.kvCacheUsage], 0.5, "KV usage: the fullest engine");
    assert.equal(metrics.counters[COUNTERS.promptTokens], 1234);
    assert.equal(metrics.counters[COUNTERS.requestsCompleted], 15, "summed over finished_reason");
    assert.deepEqual(metrics.histograms[HISTOGRAMS.ttft]?.cumulative, [5, 13, 17]);
  });

  void it("maps SGLang names and the deprecated vLLM KV gauge", () => {
    const page = parsePrometheusText(
      [
        "# TYPE sglang:num_running_reqs gauge",
        'sglang:num_running_reqs{model_name="m"} 5',
        "# TYPE sglang:num_queue_reqs gauge",
        'sglang:num_queue_reqs{model_name="m"} 1',
        "# TYPE sglang:token_usage gauge",
        'sglang:token_usage{model_name="m"} 0.7',
        "# TYPE sglang:generation_tokens_total counter",
        'sglang:generation_tokens_total{model_name="m"} 99',
        "# TYPE sglang:inter_token_latency_seconds histogram",
        'sglang:inter_token_latency_seconds_bucket{le="0.05"} 3',
        'sglang:inter_token_latency_seconds_bucket{le="+Inf"} 4',
        "sglang:inter_token_latency_seconds_count 4",
        "sglang:inter_token_latency_seconds_sum 0.3",
        "# TYPE cpu_utilization gauge",
        "cpu_utilization 42",
      ].join("\n"),
    );
    const { metrics } = mapEngineMetrics(page);
    assert.equal(metrics.gauges[GAUGES.running], 5);
    assert.equal(metrics.gauges[GAUGES.waiting], 1);
    assert.equal(metrics.gauges[GAUGES.kvCacheUsage], 0.7);
    assert.equal(metrics.counters[COUNTERS.generationTokens], 99);
    assert.equal(metrics.histograms[HISTOGRAMS.itl]?.count, 4);
    assert.equal(metrics.gauges.cpu_utilization, 42, "other gauges pass through under their own name");
    const old = mapEngineMetrics(parsePrometheusText("vllm:gpu_cache_usage_perc 0.3\n"));
    assert.equal(old.metrics.gauges[GAUGES.kvCacheUsage], 0.3);
  });

  void it("reports a broken histogram and keeps the rest", () => {
    const page = parsePrometheusText(
      'vllm:num_requests_running 1\nvllm:time_to_first_token_seconds_bucket{le="1"} 2\n',
    );
    const { metrics, problems } = mapEngineMetrics(page);
    assert.equal(metrics.gauges[GAUGES.running], 1);
    assert.equal(metrics.histograms[HISTOGRAMS.ttft], undefined);
    assert.match(problems[0]!, /no \+Inf bucket/);
  });
});
