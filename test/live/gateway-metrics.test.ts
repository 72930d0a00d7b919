/**
 * The gateway's /metrics page: prom-client's families and the two per-request series counted by
 * hand (requests by route and code, request durations) on one valid page.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GatewayMetrics } from "../../src/live/gateway/metrics.ts";
import { parsePrometheusText, type Sample } from "../../src/live/prometheus/parser.ts";

function metrics(): GatewayMetrics {
  return new GatewayMetrics({
    queue: () => ({ length: 3, workerBusy: 2, noWorker: 1, oldestAge_s: 0.5 }),
    replicas: () => [{ pool: "mixed", state: "ready", count: 2 }],
    desired: () => [{ pool: "mixed", desired: 2, min: 1, max: 4 }],
    inFlight: () => 7,
  });
}

const find = (samples: readonly Sample[] | undefined, labels: Record<string, string>) =>
  samples?.find((s) => Object.entries(labels).every(([key, value]) => s.labels[key] === value))?.value;

void describe("gateway /metrics", () => {
  void it("has every family, with the per-request series counted by route and code", async () => {
    const m = metrics();
    m.requestDone("/v1/completions", 200, 0.004);
    m.requestDone("/v1/completions", 200, 0.02);
    m.requestDone("/v1/completions", 429, 0.001);
    m.requestDone("/v1/chat/completions", 200, 400);
    m.retried();
    m.queueWait(0.2);
    m.decision("mixed", "up");
    const { contentType, body } = await m.page();
    assert.match(contentType, /^text\/plain/);
    const page = parsePrometheusText(body);
    assert.deepEqual(page.errors, []);
    const requests = page.samples.get("splitscale_gateway_requests_total");
    assert.equal(find(requests, { route: "/v1/completions", code: "200" }), 2);
    assert.equal(find(requests, { route: "/v1/completions", code: "429" }), 1);
    assert.equal(find(requests, { route: "/v1/chat/completions", code: "200" }), 1);
    assert.equal(page.families.get("splitscale_gateway_requests_total")?.type, "counter");

    const duration = "splitscale_gateway_request_duration_seconds";
    assert.equal(page.families.get(duration)?.type, "histogram");
    const buckets = page.samples.get(`${duration}_bucket`);
    assert.equal(find(buckets, { route: "/v1/completions", le: "0.005" }), 2);
    assert.equal(find(buckets, { route: "/v1/completions", le: "0.025" }), 3);
    assert.equal(find(buckets, { route: "/v1/chat/completions", le: "300" }), 0);
    assert.equal(find(buckets, { route: "/v1/chat/completions", le: "+Inf" }), 1);
    assert.equal(find(page.samples.get(`${duration}_count`), { route: "/v1/completions" }), 3);
    assert.ok(
      Math.abs(find(page.samples.get(`${duration}_sum`), { route: "/v1/completions" })! - 0.025) < 1e-9,
    );

    assert.equal(find(page.samples.get("splitscale_gateway_queue_length"), { reason: "WorkerBusy" }), 2);
    assert.equal(find(page.samples.get("splitscale_gateway_in_flight_requests"), {}), 7);
    assert.equal(find(page.samples.get("splitscale_gateway_retries_total"), {}), 1);
    assert.equal(find(page.samples.get("splitscale_gateway_queue_wait_seconds_count"), {}), 1);
    assert.equal(find(page.samples.get("splitscale_autoscaler_decisions_total"), { direction: "up" }), 1);
    assert.equal(find(page.samples.get("splitscale_replicas"), { pool: "mixed", state: "ready" }), 2);
  });

  void it("is valid before any request", async () => {
    const page = parsePrometheusText((await metrics().page()).body);
    assert.deepEqual(page.errors, []);
    assert.equal(page.families.get("splitscale_gateway_request_duration_seconds")?.type, "histogram");
  });
});
