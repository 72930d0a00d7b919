/**
 * The admin API (JSON) behind `splitscale workers list`, `splitscale queue` and `splitscale status`:
 * GET /admin/workers, /admin/queue, /admin/status, /admin/decisions?limit=N.
 */
import type { FastifyInstance } from "fastify";
import { GAUGES } from "../../policy/types.ts";
import type { MetricsCollector } from "../collector.ts";
import type { Controller, PoolPlan } from "../controller.ts";
import { workerStatusWords, type WorkerRegistry } from "../workers.ts";
import type { Gateway } from "./gateway.ts";

export interface AdminSources {
  readonly name: string;
  readonly model: string;
  readonly servedModelName: string;
  readonly actuator: string;
  readonly startedAtMs: number;
  readonly registry: WorkerRegistry;
  readonly gateway: Gateway;
  readonly collector: MetricsCollector;
  readonly controller: Controller | undefined;
  readonly pools: () => ReadonlyMap<string, PoolPlan>;
  readonly desired: (pool: string) => number;
  readonly logTail?: (workerId: string) => readonly string[];
}

export interface AdminWorker {
  readonly id: string;
  readonly pool: string;
  readonly status: string;
  readonly detail_status: string;
  readonly phase: string;
  readonly url: string | null;
  readonly pid: number | null;
  readonly in_flight: number;
  readonly served: number;
  readonly failed: number;
  readonly restarts: number;
  readonly created_at: string;
  readonly ready_at: string | null;
  readonly deleted_at: string | null;
  readonly last_served_at: string;
  readonly note: string;
  readonly metrics: {
    readonly running?: number;
    readonly waiting?: number;
    readonly kv_cache_usage?: number;
    readonly gpu_utilization?: number;
    readonly prompt_tokens_per_s?: number;
    readonly generation_tokens_per_s?: number;
  } | null;
  readonly scrape_error: string | null;
  readonly log_tail: readonly string[];
}

export interface AdminQueueEntry {
  readonly queue_index: number;
  readonly request_id: string;
  readonly created_at: string;
  readonly reason: string;
  readonly age_s: number;
  readonly expires_in_s: number;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export function installAdminRoutes(app: FastifyInstance, sources: AdminSources): void {
  const { registry, gateway, collector } = sources;

  app.get("/admin/workers", () => {
    const workers: AdminWorker[] = registry.all(true).map((worker) => {
      const words = workerStatusWords(worker);
      const metrics = worker.phase === "deleted" ? undefined : collector.metricsFor(worker.id);
      const scrape = collector.status(worker.id);
      return {
        id: worker.id,
        pool: worker.pool,
        status: words.status,
        detail_status: words.detail,
        phase: worker.phase,
        url: worker.url ?? null,
        pid: worker.pid ?? null,
        in_flight: worker.inFlight,
        served: worker.served,
        failed: worker.failed,
        restarts: worker.restarts,
        created_at: iso(worker.createdAtMs)!,
        ready_at: iso(worker.readyAtMs),
        deleted_at: iso(worker.deletedAtMs),
        last_served_at: iso(worker.lastServedAtMs)!,
        note: worker.note,
        metrics:
          metrics === undefined
            ? null
            : {
                running: metrics.gauges[GAUGES.running],
                waiting: metrics.gauges[GAUGES.waiting],
                kv_cache_usage: metrics.gauges[GAUGES.kvCacheUsage],
                gpu_utilization: metrics.gauges[GAUGES.gpuUtilization],
                ...collector.rates(worker.id),
              },
        scrape_error: worker.phase === "deleted" ? null : (scrape?.lastError ?? null),
        log_tail: sources.logTail?.(worker.id) ?? [],
      };
    });
    return Promise.resolve({ workers });
  });

  app.get("/admin/queue", () => {
    const now = Date.now();
    const entries: AdminQueueEntry[] = gateway.queue.list().map((entry, index) => ({
      queue_index: index,
      request_id: entry.requestId,
      created_at: iso(entry.enqueuedAtMs)!,
      reason: entry.reason,
      age_s: (now - entry.enqueuedAtMs) / 1000,
      expires_in_s: Math.max(0, (entry.expiresAtMs - now) / 1000),
    }));
    return Promise.resolve({ length: entries.length, max_size: gateway.queue.maxSize, entries });
  });

  app.get("/admin/decisions", (request) => {
    const limitText = (request.query as Record<string, string | undefined>).limit;
    const limit = Math.max(1, Math.min(500, Number(limitText ?? 50) || 50));
    return Promise.resolve({
      decisions: sources.controller?.decisions(limit) ?? [],
      last_tick: sources.controller?.lastTick() ?? [],
    });
  });

  app.get("/admin/status", () => {
    const now = Date.now();
    const stats = gateway.stats;
    const pools = [...sources.pools().values()].map((plan) => {
      const workers = registry.live(plan.name);
      const count = (phase: string): number => workers.filter((w) => w.phase === phase).length;
      return {
        name: plan.name,
        role: plan.role,
        min: plan.min,
        max: plan.max,
        desired: sources.desired(plan.name),
        starting: count("starting"),
        ready: count("ready"),
        busy: workers.filter((w) => w.phase === "ready" && w.inFlight > 0).length,
        draining: count("draining"),
        stopping: count("stopping"),
      };
    });
    const fleet = collector.fleetQuantiles(0.9);
    return Promise.resolve({
      name: sources.name,
      model: sources.model,
      served_model: sources.servedModelName,
      actuator: sources.actuator,
      policies: sources.controller?.policyNames() ?? [],
      units: sources.controller?.unitNames() ?? [],
      uptime_s: (now - sources.startedAtMs) / 1000,
      pools,
      queue: {
        length: gateway.queue.length,
        max_size: gateway.queue.maxSize,
        worker_busy: gateway.queue.count("WorkerBusy"),
        no_worker: gateway.queue.count("NoWorker"),
        oldest_age_s: gateway.queue.oldestAgeMs(now) / 1000,
      },
      requests: {
        received: stats.received,
        invalid: stats.invalid,
        in_flight: stats.inFlight,
        ...stats.outcomes,
        retries: stats.retries,
        by_code: Object.fromEntries([...stats.byCode.entries()].sort((a, b) => a[0] - b[0])),
      },
      latency: { ttft_p90_s: fleet.ttft_s ?? null, itl_p90_s: fleet.itl_s ?? null },
      decisions_made: sources.controller?.decisionsMade ?? 0,
      last_decision: sources.controller?.decisions(1)[0] ?? null,
    });
  });
}
