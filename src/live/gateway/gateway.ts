/**
 * The OpenAI-compatible gateway: validates requests, admits them to a worker or to the bounded queue,
 * and proxies them (JSON or SSE) to the worker, with deadlines, one retry on a worker failure, and
 * backpressure that always answers: 429 + Retry-After when the queue is full, 503 + Retry-After when
 * a request waited too long or no worker can come, 504 past its deadline, 502 when its worker failed
 * (after the retry), or an SSE error event when the worker died after tokens were already sent.
 *
 * Every request the gateway accepts ends in exactly one outcome, counted in `stats`:
 * ok | rejected (429/503) | failed (502/504/stream error) | upstream_4xx | client_closed.
 *
 * This file is the front door (validation) and admission (routing, the queue, worker health); one
 * request's life after admission is an `Exchange` (exchange.ts).
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import { Agent, request as httpRequest } from "undici";
import { requestLengths } from "../engine/lengths.ts";
import { readBody, sendJson, sendRefusal, serveFirst, type FrontLimits } from "../http.ts";
import type { Logger } from "../log.ts";
import { errorBody, validateBody, type RequestKind } from "../openai.ts";
import type { Worker, WorkerRegistry } from "../workers.ts";
import { Deadlines } from "./deadlines.ts";
import { Exchange, type ExchangeHost } from "./exchange.ts";
import { GatewayError, GatewayStats, type GatewayObserver } from "./outcomes.ts";
import { RequestQueue, type QueueEntry } from "./queue.ts";
import { Router, type RoutingStrategy } from "./router.ts";

export { GatewayError, GatewayStats, type GatewayObserver, type Outcome } from "./outcomes.ts";

export interface GatewayOptions {
  readonly servedModelName: string;
  readonly queueMaxSize: number;
  readonly queueTimeout_s: number;
  readonly requestTimeout_s: number;
  readonly retries: number;
  readonly strategy: RoutingStrategy;
  readonly maxConcurrencyPerWorker: number;
  /** Output tokens assumed for requests without max_tokens (traffic counters only). */
  readonly defaultMaxTokens: number;
  /** Expected seconds until a new worker is ready (Retry-After while no worker is). */
  readonly startupDelay_s: number;
  readonly log: Logger;
  /** Whether a worker may still appear when none exists (a starting worker, or a pool that can scale). */
  readonly capacityPossible: () => boolean;
  readonly kvUsage?: (workerId: string) => number | undefined;
  /** Health URL of a worker (default `<url>/health`), probed after a connection failure. */
  readonly healthUrl?: (worker: Worker) => string | undefined;
  readonly nowMs?: () => number;
}

/**
 * How long a worker that failed a request stays out of routing at most. After a connection error it
 * is probed at once: a worker that answers its health check (the failure was a keep-alive race, not a
 * crash) is routable again within milliseconds; a dead one stays out until the actuator notices.
 */
const SUSPEND_AFTER_CONNECTION_ERROR_MS = 3000;
const SUSPEND_AFTER_5XX_MS = 1000;
const PROBE_TIMEOUT_MS = 500;

const ROUTES: ReadonlyMap<string, RequestKind> = new Map([
  ["/v1/completions", "completions"],
  ["/v1/chat/completions", "chat"],
]);

function shuttingDown(): GatewayError {
  return new GatewayError(503, "service_unavailable", "shutting_down", "the gateway is shutting down", 5);
}

export class Gateway implements ExchangeHost {
  readonly stats = new GatewayStats();
  readonly queue: RequestQueue;
  readonly router: Router;
  observer: GatewayObserver = {};
  /**
   * Keep-alive connections to the workers. Per worker, as many as it may have requests in flight (a
   * stream holds its connection), so a burst after a stall queues here instead of opening hundreds of
   * sockets at once.
   */
  readonly agent: Agent;
  readonly deadlines = new Deadlines();
  readonly log: Logger;
  readonly retries: number;
  readonly nowMs: () => number;
  private readonly idPrefix = randomBytes(3).toString("hex");
  private nextId = 0;
  private closing = false;

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly options: GatewayOptions,
  ) {
    this.nowMs = options.nowMs ?? Date.now;
    this.log = options.log;
    this.retries = options.retries;
    this.agent = new Agent({
      connections: options.maxConcurrencyPerWorker > 0 ? options.maxConcurrencyPerWorker : 256,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: { timeout: 3_000 },
    });
    this.queue = new RequestQueue(options.queueMaxSize);
    this.router = new Router(options.strategy, options.maxConcurrencyPerWorker, options.kvUsage);
    registry.onCapacity = () => this.dispatch();
  }

  /**
   * Serves the two OpenAI endpoints on `app` (by hand, ahead of fastify's routing: they are the hot
   * path) and /v1/models.
   */
  install(app: FastifyInstance): void {
    const limits = serveFirst(app, (request, response) => this.front(request, response, limits));
    app.get("/v1/models", () =>
      Promise.resolve({
        object: "list",
        data: [{ id: this.options.servedModelName, object: "model", created: 0, owned_by: "splitscale" }],
      }),
    );
  }

  /** Stops admitting: queued requests are refused with 503 now, in-flight ones may finish. */
  shutdown(): void {
    this.closing = true;
    for (const entry of [...this.queue.list()]) {
      this.queue.remove(entry);
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.reject(shuttingDown());
    }
  }

  async close(): Promise<void> {
    this.shutdown();
    await this.agent.close();
    this.deadlines.close();
  }

  // ---- the front door ----------------------------------------------------------------------------

  /** Takes POST /v1/completions and /v1/chat/completions; anything else goes on to fastify. */
  private front(request: IncomingMessage, response: ServerResponse, limits: FrontLimits): boolean {
    if (request.method !== "POST") return false;
    const url = request.url ?? "";
    const query = url.indexOf("?");
    const kind = ROUTES.get(query < 0 ? url : url.slice(0, query));
    if (kind === undefined) return false;
    readBody(request, limits.bodyLimit, (refused, parsed, raw) => {
      if (refused !== undefined) {
        limits.onRefused(refused.status);
        sendRefusal(response, refused);
      } else this.accept(kind, request, response, parsed, raw);
    });
    return true;
  }

  /** Validates a request body and starts its exchange (or refuses it: never counted as received). */
  private accept(
    kind: RequestKind,
    request: IncomingMessage,
    response: ServerResponse,
    parsed: unknown,
    raw: Buffer | undefined,
  ): void {
    const arrivedAtMs = this.nowMs();
    const validated = validateBody(kind, parsed);
    if (!validated.ok) {
      this.stats.invalid++;
      sendJson(
        response,
        400,
        errorBody(validated.message, "invalid_request_error", "invalid_request", validated.param),
      );
      return;
    }
    if (validated.body.model !== this.options.servedModelName) {
      this.stats.invalid++;
      sendJson(
        response,
        404,
        errorBody(
          `The model \`${validated.body.model}\` does not exist (this gateway serves ${this.options.servedModelName}).`,
          "invalid_request_error",
          "model_not_found",
          "model",
        ),
      );
      return;
    }
    const timeoutHeader = Number(request.headers["x-request-timeout-s"]);
    const timeout_s =
      Number.isFinite(timeoutHeader) && timeoutHeader > 0
        ? Math.min(timeoutHeader, this.options.requestTimeout_s)
        : this.options.requestTimeout_s;
    const lengths = requestLengths(kind, validated.body, this.options.defaultMaxTokens);
    this.stats.received++;
    this.stats.inFlight++;
    this.stats.arrivals++;
    this.stats.promptTokens += lengths.prompt;
    new Exchange(
      this,
      `${this.idPrefix}-${(this.nextId++).toString(36)}`,
      kind === "chat" ? "/v1/chat/completions" : "/v1/completions",
      validated.body.stream === true,
      lengths.prompt,
      arrivedAtMs,
      arrivedAtMs + timeout_s * 1000,
      raw ?? Buffer.from(JSON.stringify(parsed)),
      response,
    ).start();
  }

  // ---- workers -----------------------------------------------------------------------------------

  firstByte(worker: Worker, promptTokens: number): void {
    this.registry.firstByte(worker, promptTokens);
  }

  released(worker: Worker, ok: boolean, promptTokensLeft: number): void {
    this.registry.requestFinished(worker, ok, promptTokensLeft);
  }

  suspend(worker: Worker): void {
    this.registry.suspend(worker, SUSPEND_AFTER_5XX_MS);
  }

  /** Keeps a worker that failed at the connection level out of routing until it answers a health probe. */
  quarantine(worker: Worker): void {
    this.registry.suspend(worker, SUSPEND_AFTER_CONNECTION_ERROR_MS);
    const url =
      worker.url === undefined ? undefined : (this.options.healthUrl?.(worker) ?? `${worker.url}/health`);
    if (url === undefined) return;
    httpRequest(url, {
      method: "GET",
      // Not through the worker pool: its connections may all be busy with streams.
      headersTimeout: PROBE_TIMEOUT_MS,
      bodyTimeout: PROBE_TIMEOUT_MS,
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    })
      .then(async (response) => {
        await response.body.dump();
        if (response.statusCode === 200 && worker.phase === "ready") this.registry.unsuspend(worker);
      })
      .catch(() => {
        // Still unreachable: the suspension stands until it expires or the actuator restarts it.
      });
  }

  // ---- admission ---------------------------------------------------------------------------------

  /** Seconds a refused client should wait: the queue ahead of it at the recent completion rate. */
  retryAfter(): number {
    const rate = this.stats.completionRate(this.nowMs());
    const wait = rate > 0 ? (this.queue.length + 1) / rate : this.options.startupDelay_s;
    return Math.max(1, Math.min(120, Math.ceil(wait)));
  }

  /** Places queued requests on workers with room, oldest first. */
  dispatch(): void {
    if (this.queue.length === 0) return;
    const routable = this.registry.routable();
    while (this.queue.length > 0) {
      const head = this.queue.head()!;
      const worker = this.router.pick(routable, head.exclude);
      if (worker === undefined) break;
      this.queue.shift();
      if (head.timer !== undefined) clearTimeout(head.timer);
      this.registry.requestStarted(worker, head.promptTokens);
      this.observer.queueWait?.((this.nowMs() - head.enqueuedAtMs) / 1000);
      head.resolve(worker);
    }
    if (this.queue.length > 0) this.queue.setReason(routable.length === 0 ? "NoWorker" : "WorkerBusy");
  }

  /** A worker for the exchange at once, or a place in the queue, or a refusal. */
  admit(exchange: Exchange, retry: boolean): void {
    if (this.closing) return exchange.refuse(shuttingDown());
    const routable = this.registry.routable();
    if (this.queue.length === 0 || retry) {
      const worker = this.router.pick(routable, exchange.exclude);
      if (worker !== undefined) {
        this.registry.requestStarted(worker, exchange.promptTokens);
        return exchange.assign(worker);
      }
    }
    if (!retry && this.queue.full)
      return exchange.refuse(
        new GatewayError(
          429,
          "rate_limit_error",
          "queue_full",
          `all workers are busy and the queue is full (${this.queue.maxSize} waiting); retry later`,
          this.retryAfter(),
        ),
      );
    if (this.registry.live().length === 0 && !this.options.capacityPossible())
      return exchange.refuse(
        new GatewayError(
          503,
          "service_unavailable",
          "no_worker",
          "no worker is running and none can be started",
          this.retryAfter(),
        ),
      );
    const now = this.nowMs();
    const queueDeadline = now + this.options.queueTimeout_s * 1000;
    const entry: QueueEntry = {
      requestId: exchange.id,
      enqueuedAtMs: now,
      reason: routable.length === 0 ? "NoWorker" : "WorkerBusy",
      expiresAtMs: Math.min(queueDeadline, exchange.deadlineMs),
      promptTokens: exchange.promptTokens,
      exclude: exchange.exclude,
      retry,
      resolve: (worker) => {
        exchange.queued = undefined;
        exchange.assign(worker);
      },
      reject: (error) => {
        exchange.queued = undefined;
        exchange.refuse(error as GatewayError);
      },
      timer: undefined,
    };
    entry.timer = setTimeout(
      () => {
        if (!this.queue.remove(entry)) return;
        const waited = ((this.nowMs() - entry.enqueuedAtMs) / 1000).toFixed(1);
        entry.reject(
          exchange.deadlineMs <= queueDeadline
            ? new GatewayError(
                504,
                "timeout_error",
                "deadline_exceeded",
                `request deadline passed after ${waited} s in the queue (${entry.reason})`,
              )
            : new GatewayError(
                503,
                "service_unavailable",
                "queue_timeout",
                `no worker became free within ${this.options.queueTimeout_s} s (${entry.reason}); retry later`,
                this.retryAfter(),
              ),
        );
      },
      Math.max(0, entry.expiresAtMs - now),
    );
    exchange.queued = entry;
    this.queue.push(entry);
  }

  unqueue(exchange: Exchange): QueueEntry | undefined {
    const entry = exchange.queued;
    if (entry === undefined || !this.queue.remove(entry)) return undefined;
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    exchange.queued = undefined;
    return entry;
  }
}
