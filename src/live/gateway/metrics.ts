/**
 * The gateway's own `/metrics` (prom-client): requests by route and code, latency, queue length and
 * wait, retries, replicas per pool and state, desired replicas and the autoscaler's decisions.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { GatewayObserver } from "./gateway.ts";

export interface GatewayMetricSources {
  queue(): { length: number; workerBusy: number; noWorker: number; oldestAge_s: number };
  replicas(): readonly { pool: string; state: string; count: number }[];
  desired(): readonly { pool: string; desired: number; min: number; max: number }[];
  inFlight(): number;
}

export class GatewayMetrics implements GatewayObserver {
  readonly registry = new Registry();
  private readonly requests: Counter<"route" | "code">;
  private readonly duration: Histogram<"route">;
  private readonly wait: Histogram;
  private readonly retries: Counter;
  private readonly decisions: Counter<"pool" | "direction">;
  private readonly scrapeErrors: Counter;

  constructor(sources: GatewayMetricSources) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: "splitscale_gateway_requests_total",
      help: "Requests answered by the gateway, by route and HTTP status (499 = client went away).",
      labelNames: ["route", "code"],
      registers,
    });
    this.duration = new Histogram({
      name: "splitscale_gateway_request_duration_seconds",
      help: "Arrival to last byte at the gateway, queue time included.",
      labelNames: ["route"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
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
    this.requests.inc({ route, code: String(code) });
    this.duration.observe({ route }, seconds);
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
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
