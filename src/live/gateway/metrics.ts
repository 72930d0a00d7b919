/**
 * The gateway's own `/metrics`: requests by route and code, latency, queue length and wait, retries,
 * replicas per pool and state, desired replicas and the autoscaler's decisions. prom-client holds
 * them all but the two series updated on every request (requests by route and code, request
 * duration), which are counted by hand and written into the same page when it is scraped:
 * prom-client hashes an update's labels into a string each time, a cost paid ~1,000 times a second.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { Histogram as Buckets } from "../../serving/engine-metrics.ts";
import { ExpositionWriter, type HistogramSnapshot } from "../prometheus/exposition.ts";
import type { GatewayObserver } from "./outcomes.ts";

const REQUESTS = "splitscale_gateway_requests_total";
const REQUESTS_HELP = "Requests answered by the gateway, by route and HTTP status (499 = client went away).";
const DURATION = "splitscale_gateway_request_duration_seconds";
const DURATION_HELP = "Arrival to last byte at the gateway, queue time included.";
const DURATION_BUCKETS_S = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  120,
  300,
  Infinity,
];

/** One route's requests by status code and their durations. */
interface RouteSeries {
  readonly codes: Map<number, number>;
  readonly duration: Buckets;
}

export interface GatewayMetricSources {
  queue(): { length: number; workerBusy: number; noWorker: number; oldestAge_s: number };
  replicas(): readonly { pool: string; state: string; count: number }[];
  desired(): readonly { pool: string; desired: number; min: number; max: number }[];
  inFlight(): number;
}

export class GatewayMetrics implements GatewayObserver {
  readonly registry = new Registry();
  private readonly routes = new Map<string, RouteSeries>();
  private readonly wait: Histogram;
  private readonly retries: Counter;
  private readonly decisions: Counter<"pool" | "direction">;
  private readonly scrapeErrors: Counter;

  constructor(sources: GatewayMetricSources) {
    const registers = [this.registry];
    this.wait = new Histogram({
      name: "splitscale_gateway_queue_wait_seconds",
      help: "Time requests waited in the gateway queue before a worker took them.",
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers,
    });
    this.retries = new Counter({
      name: "splitscale_gateway_retries_total",
      help: "Requests retried on another worker after their worker failed before answering.",
      registers,
    });
    this.decisions = new Counter({
      name: "splitscale_autoscaler_decisions_total",
      help: "Autoscaling decisions per pool: up, down or hold (a decision that changed nothing).",
      labelNames: ["pool", "direction"],
      registers,
    });
    this.scrapeErrors = new Counter({
      name: "splitscale_worker_scrape_errors_total",
      help: "Failed scrapes of worker metrics pages (unreachable, timeout, malformed page).",
      registers,
    });
    new Gauge({
      name: "splitscale_gateway_queue_length",
      help: "Requests waiting in the gateway queue, by reason (WorkerBusy, NoWorker).",
      labelNames: ["reason"],
      registers,
      collect() {
        const queue = sources.queue();
        this.set({ reason: "WorkerBusy" }, queue.workerBusy);
        this.set({ reason: "NoWorker" }, queue.noWorker);
      },
    });
    new Gauge({
      name: "splitscale_gateway_queue_oldest_age_seconds",
      help: "Age of the oldest queued request.",
      registers,
      collect() {
        this.set(sources.queue().oldestAge_s);
      },
    });
    new Gauge({
      name: "splitscale_gateway_in_flight_requests",
      help: "Requests accepted and not answered yet (queued or at a worker).",
      registers,
      collect() {
        this.set(sources.inFlight());
      },
    });
    new Gauge({
      name: "splitscale_replicas",
      help: "Workers per pool and state (starting, ready, draining, stopping).",
      labelNames: ["pool", "state"],
      registers,
      collect() {
        this.reset();
        for (const { pool, state, count } of sources.replicas()) this.set({ pool, state }, count);
      },
    });
    new Gauge({
      name: "splitscale_replicas_desired",
      help: "The pool's current target (what the actuator was last told).",
      labelNames: ["pool"],
      registers,
      collect() {
        this.reset();
        for (const { pool, desired } of sources.desired()) this.set({ pool }, desired);
      },
    });
  }

  requestDone(route: string, code: number, seconds: number): void {
    let series = this.routes.get(route);
    if (series === undefined) {
      series = { codes: new Map(), duration: new Buckets(DURATION_BUCKETS_S) };
      this.routes.set(route, series);
    }
    series.codes.set(code, (series.codes.get(code) ?? 0) + 1);
    series.duration.observe(seconds);
  }

  queueWait(seconds: number): void {
    this.wait.observe(seconds);
  }

  retried(): void {
    this.retries.inc();
  }

  decision(pool: string, direction: "up" | "down" | "hold"): void {
    this.decisions.inc({ pool, direction });
  }

  scrapeFailed(count = 1): void {
    this.scrapeErrors.inc(count);
  }

  async page(): Promise<{ contentType: string; body: string }> {
    const requests: { labels: Record<string, string>; value: number }[] = [];
    const durations: { labels: Record<string, string>; histogram: HistogramSnapshot }[] = [];
    for (const [route, { codes, duration }] of this.routes) {
      for (const [code, value] of codes) requests.push({ labels: { route, code: String(code) }, value });
      durations.push({
        labels: { route },
        histogram: {
          le: duration.le,
          cumulative: duration.cumulative(),
          count: duration.count,
          sum: duration.sum,
        },
      });
    }
    const perRequest = new ExpositionWriter()
      .counter(REQUESTS, REQUESTS_HELP, requests)
      .histograms(DURATION, DURATION_HELP, durations);
    return {
      contentType: this.registry.contentType,
      body: `${await this.registry.metrics()}${perRequest.toString()}`,
    };
  }
}
