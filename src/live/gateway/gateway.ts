/**
 * The OpenAI-compatible gateway: validates requests, admits them to a worker or to the bounded queue,
 * and proxies them (JSON or SSE) to the worker, with deadlines, one retry on a worker failure, and
 * backpressure that always answers: 429 + Retry-After when the queue is full, 503 + Retry-After when
 * a request waited too long or no worker can come, 504 past its deadline, 502 when its worker failed
 * (after the retry), or an SSE error event when the worker died after tokens were already sent.
 *
 * Every request the gateway accepts ends in exactly one outcome, counted in `stats`:
 * ok | rejected (429/503) | failed (502/504/stream error) | upstream_4xx | client_closed.
 */
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Agent, request as httpRequest } from "undici";
import { requestLengths } from "../engine/lengths.ts";
import type { Logger } from "../log.ts";
import { errorBody, validateBody, type RequestKind } from "../openai.ts";
import type { Worker, WorkerRegistry } from "../workers.ts";
import { RequestQueue, type QueueEntry } from "./queue.ts";
import { Router, type RoutingStrategy } from "./router.ts";

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

export type Outcome = "ok" | "rejected" | "failed" | "upstream_4xx" | "client_closed";

export class GatewayStats {
  received = 0;
  /** Refused at validation (400/404/413/415): never entered the system. */
  invalid = 0;
  readonly outcomes: Record<Outcome, number> = {
    ok: 0,
    rejected: 0,
    failed: 0,
    upstream_4xx: 0,
    client_closed: 0,
  };
  readonly byCode = new Map<number, number>();
  retries = 0;
  inFlight = 0;
  // Front-door traffic since start (the controller takes differences per decision interval).
  arrivals = 0;
  promptTokens = 0;
  outputTokens = 0;
  completions = 0;
  private readonly completionTimesMs: number[] = [];

  finish(outcome: Outcome, code: number, nowMs: number): void {
    this.outcomes[outcome]++;
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
    this.inFlight--;
    if (outcome === "ok") {
      this.completions++;
      this.completionTimesMs.push(nowMs);
      if (this.completionTimesMs.length > 1000) this.completionTimesMs.splice(0, 500);
    }
  }

  /** Completions per second over the last 30 s. */
  completionRate(nowMs: number): number {
    const since = nowMs - 30_000;
    let n = 0;
    for (let i = this.completionTimesMs.length - 1; i >= 0 && this.completionTimesMs[i]! >= since; i--) n++;
    return n / 30;
  }
}

/** A refusal or failure that becomes an HTTP answer. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string,
    message: string,
    readonly retryAfter_s?: number,
    readonly outcome: Outcome = status === 429 || status === 503 ? "rejected" : "failed",
  ) {
    super(message);
  }
}

/** The worker failed before any byte reached the client; `connection`: it could not be reached or hung up. */
class RetryableError extends Error {
  constructor(
    message: string,
    readonly connection: boolean,
  ) {
    super(message);
  }
}

/**
 * How long a worker that failed a request stays out of routing at most. After a connection error it
 * is probed at once: a worker that answers its health check (the failure was a keep-alive race, not a
 * crash) is routable again within milliseconds; a dead one stays out until the actuator notices.
 */
const SUSPEND_AFTER_CONNECTION_ERROR_MS = 3000;
const SUSPEND_AFTER_5XX_MS = 1000;
const PROBE_TIMEOUT_MS = 500;

/** Hooks the gateway offers to metrics exporters. */
export interface GatewayObserver {
  requestDone?(route: string, code: number, seconds: number): void;
  queueWait?(seconds: number): void;
  retried?(): void;
}

interface RequestContext {
  readonly id: string;
  readonly kind: RequestKind;
  readonly route: string;
  readonly raw: string;
  readonly stream: boolean;
  readonly promptTokens: number;
  readonly arrivedAtMs: number;
  readonly deadlineMs: number;
  /** Aborted when the client goes away or the deadline passes (whichever first). */
  readonly abort: AbortController;
  clientGone: boolean;
  deadlinePassed: boolean;
}

/** Request bodies as received, by request (weak: gone with the request). */
const rawBodies = new WeakMap<object, string>();

const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
};

export class Gateway {
  readonly stats = new GatewayStats();
  readonly queue: RequestQueue;
  readonly router: Router;
  observer: GatewayObserver = {};
  /**
   * Keep-alive connections to the workers. Per worker, as many as it may have requests in flight (a
   * stream holds its connection), so a burst after a stall queues here instead of opening hundreds of
   * sockets at once.
   */
  private readonly agent: Agent;
  private readonly nowMs: () => number;
  private readonly idPrefix = randomBytes(3).toString("hex");
  private nextId = 0;
  private closing = false;

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly options: GatewayOptions,
  ) {
    this.nowMs = options.nowMs ?? Date.now;
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

  /** Routes on `app`: the two OpenAI endpoints and /v1/models. */
  install(app: FastifyInstance): void {
    // Keep the body as received: it is forwarded byte for byte (no re-serialization per request).
    app.removeContentTypeParser("application/json");
    app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
      const text = body as string;
      if (text.trim() === "") {
        done(
          Object.assign(new Error("empty body"), { statusCode: 400, code: "FST_ERR_CTP_EMPTY_JSON_BODY" }),
          undefined,
        );
        return;
      }
      try {
        const parsed: unknown = JSON.parse(text);
        rawBodies.set(request, text);
        done(null, parsed);
      } catch (error) {
        done(
          Object.assign(new Error((error as Error).message), {
            statusCode: 400,
            code: "FST_ERR_CTP_INVALID_JSON_BODY",
          }),
          undefined,
        );
      }
    });
    app.post("/v1/completions", (request, reply) => this.handle("completions", request, reply));
    app.post("/v1/chat/completions", (request, reply) => this.handle("chat", request, reply));
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
      entry.reject(
        new GatewayError(503, "service_unavailable", "shutting_down", "the gateway is shutting down", 5),
      );
    }
  }

  async close(): Promise<void> {
    this.shutdown();
    await this.agent.close();
  }

  /** Keeps a worker that failed at the connection level out of routing until it answers a health probe. */
  private quarantine(worker: Worker): void {
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

  /** A worker for the request: at once, or after waiting in the queue; throws GatewayError when refused. */
  private acquire(ctx: RequestContext, exclude: ReadonlySet<string>, retry: boolean): Promise<Worker> {
    if (this.closing)
      return Promise.reject(
        new GatewayError(503, "service_unavailable", "shutting_down", "the gateway is shutting down", 5),
      );
    const routable = this.registry.routable();
    if (this.queue.length === 0 || retry) {
      const worker = this.router.pick(routable, exclude);
      if (worker !== undefined) {
        this.registry.requestStarted(worker, ctx.promptTokens);
        return Promise.resolve(worker);
      }
    }
    if (!retry && this.queue.full)
      return Promise.reject(
        new GatewayError(
          429,
          "rate_limit_error",
          "queue_full",
          `all workers are busy and the queue is full (${this.queue.maxSize} waiting); retry later`,
          this.retryAfter(),
        ),
      );
    if (this.registry.live().length === 0 && !this.options.capacityPossible())
      return Promise.reject(
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
    const expiresAtMs = Math.min(queueDeadline, ctx.deadlineMs);
    return new Promise<Worker>((resolve, reject) => {
      const entry: QueueEntry = {
        requestId: ctx.id,
        enqueuedAtMs: now,
        reason: routable.length === 0 ? "NoWorker" : "WorkerBusy",
        expiresAtMs,
        promptTokens: ctx.promptTokens,
        exclude,
        retry,
        resolve,
        reject,
        timer: undefined,
      };
      entry.timer = setTimeout(
        () => {
          if (!this.queue.remove(entry)) return;
          const waited = ((this.nowMs() - entry.enqueuedAtMs) / 1000).toFixed(1);
          if (ctx.deadlineMs <= queueDeadline)
            reject(
              new GatewayError(
                504,
                "timeout_error",
                "deadline_exceeded",
                `request deadline passed after ${waited} s in the queue (${entry.reason})`,
              ),
            );
          else
            reject(
              new GatewayError(
                503,
                "service_unavailable",
                "queue_timeout",
                `no worker became free within ${this.options.queueTimeout_s} s (${entry.reason}); retry later`,
                this.retryAfter(),
              ),
            );
        },
        Math.max(0, expiresAtMs - now),
      );
      ctx.abort.signal.addEventListener(
        "abort",
        () => {
          if (!this.queue.remove(entry)) return;
          if (entry.timer !== undefined) clearTimeout(entry.timer);
          const waited = ((this.nowMs() - entry.enqueuedAtMs) / 1000).toFixed(1);
          reject(
            ctx.deadlinePassed
              ? new GatewayError(
                  504,
                  "timeout_error",
                  "deadline_exceeded",
                  `request deadline passed after ${waited} s in the queue (${entry.reason})`,
                )
              : new GatewayError(
                  499,
                  "client_closed",
                  "client_closed",
                  "client went away while queued",
                  undefined,
                  "client_closed",
                ),
          );
        },
        { once: true },
      );
      this.queue.push(entry);
    });
  }

  // ---- request handling --------------------------------------------------------------------------

  private async handle(
    kind: RequestKind,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const arrivedAtMs = this.nowMs();
    const body = request.body;
    const validated = validateBody(kind, body);
    if (!validated.ok) {
      this.stats.invalid++;
      return reply
        .code(400)
        .send(errorBody(validated.message, "invalid_request_error", "invalid_request", validated.param));
    }
    if (validated.body.model !== this.options.servedModelName) {
      this.stats.invalid++;
      return reply
        .code(404)
        .send(
          errorBody(
            `The model \`${validated.body.model}\` does not exist (this gateway serves ${this.options.servedModelName}).`,
            "invalid_request_error",
            "model_not_found",
            "model",
          ),
        );
    }
    const timeoutHeader = Number(request.headers["x-request-timeout-s"]);
    const timeout_s =
      Number.isFinite(timeoutHeader) && timeoutHeader > 0
        ? Math.min(timeoutHeader, this.options.requestTimeout_s)
        : this.options.requestTimeout_s;
    const lengths = requestLengths(kind, validated.body, this.options.defaultMaxTokens);
    const ctx: RequestContext = {
      id: `${this.idPrefix}-${(this.nextId++).toString(36)}`,
      kind,
      route: kind === "chat" ? "/v1/chat/completions" : "/v1/completions",
      raw: rawBodies.get(request) ?? JSON.stringify(body),
      stream: validated.body.stream === true,
      promptTokens: lengths.prompt,
      arrivedAtMs,
      deadlineMs: arrivedAtMs + timeout_s * 1000,
      abort: new AbortController(),
      clientGone: false,
      deadlinePassed: false,
    };
    this.stats.received++;
    this.stats.inFlight++;
    this.stats.arrivals++;
    this.stats.promptTokens += lengths.prompt;
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) {
        ctx.clientGone = true;
        ctx.abort.abort(new Error("client closed the connection"));
      }
    });
    void reply.header("x-request-id", ctx.id);
    const deadline = setTimeout(() => {
      ctx.deadlinePassed = true;
      ctx.abort.abort(new Error("deadline"));
    }, timeout_s * 1000);

    let outcome: Outcome;
    let code: number;
    try {
      ({ outcome, code } = await this.serve(ctx, reply));
    } catch (error) {
      if (error instanceof GatewayError) {
        outcome = error.outcome;
        code = error.status;
        if (!reply.sent && !reply.raw.headersSent && !ctx.clientGone) {
          if (error.retryAfter_s !== undefined) void reply.header("retry-after", String(error.retryAfter_s));
          void reply.code(error.status).send(errorBody(error.message, error.type, error.code));
        }
      } else {
        this.options.log.error(
          `request ${ctx.id}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
        outcome = "failed";
        code = 500;
        if (!reply.sent && !reply.raw.headersSent)
          void reply.code(500).send(errorBody("internal gateway error", "server_error", "internal_error"));
      }
    }
    clearTimeout(deadline);
    if (ctx.clientGone && outcome !== "ok") outcome = "client_closed";
    this.stats.finish(outcome, code, this.nowMs());
    this.observer.requestDone?.(ctx.route, code, (this.nowMs() - arrivedAtMs) / 1000);
    return reply;
  }

  /** Acquire → forward, retrying on another worker when the first fails before any byte reached the client. */
  private async serve(ctx: RequestContext, reply: FastifyReply): Promise<{ outcome: Outcome; code: number }> {
    const tried = new Set<string>();
    for (let attempt = 0; ; attempt++) {
      const worker = await this.acquire(ctx, tried, attempt > 0);
      let ok = false;
      let prefillLeft = ctx.promptTokens;
      try {
        const result = await this.forward(ctx, worker, reply, () => {
          this.registry.firstByte(worker, ctx.promptTokens);
          prefillLeft = 0;
        });
        ok = result.outcome === "ok";
        return result;
      } catch (error) {
        if (!(error instanceof RetryableError)) throw error;
        tried.add(worker.id);
        if (error.connection) this.quarantine(worker);
        else this.registry.suspend(worker, SUSPEND_AFTER_5XX_MS);
        this.options.log.warn(`request ${ctx.id}: worker ${worker.id} failed (${error.message})`);
        if (attempt >= this.options.retries || ctx.clientGone || this.nowMs() >= ctx.deadlineMs)
          throw new GatewayError(
            502,
            "worker_failure",
            "worker_failed",
            `worker ${worker.id} failed: ${error.message}`,
          );
        this.stats.retries++;
        this.observer.retried?.();
        this.options.log.info(`request ${ctx.id}: retrying on another worker (attempt ${attempt + 2})`);
      } finally {
        this.registry.requestFinished(worker, ok, prefillLeft);
      }
    }
  }

  /**
   * Proxies one attempt. Throws RetryableError when the worker failed before any byte was sent to the
   * client (connection refused or reset, a 5xx, a stream that ended before its first event).
   */
  private async forward(
    ctx: RequestContext,
    worker: Worker,
    reply: FastifyReply,
    onFirstByte: () => void,
  ): Promise<{ outcome: Outcome; code: number }> {
    const failure = (error: unknown): Error => {
      if (ctx.deadlinePassed)
        return new GatewayError(
          504,
          "timeout_error",
          "deadline_exceeded",
          `request deadline passed while worker ${worker.id} was answering`,
        );
      if (ctx.clientGone)
        return new GatewayError(
          499,
          "client_closed",
          "client_closed",
          "client went away",
          undefined,
          "client_closed",
        );
      return new RetryableError(describe(error), true);
    };
    let response;
    try {
      response = await httpRequest(`${worker.url ?? ""}${ctx.route}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": ctx.id },
        body: ctx.raw,
        dispatcher: this.agent,
        signal: ctx.abort.signal,
      });
    } catch (error) {
      throw failure(error);
    }
    const status = response.statusCode;
    if (!ctx.stream || status !== 200) {
      let text: string;
      try {
        text = await response.body.text();
      } catch (error) {
        throw failure(error);
      }
      onFirstByte();
      if (status >= 500) throw new RetryableError(`HTTP ${status}: ${text.slice(0, 200)}`, false);
      if (status === 200) this.countUsage(text);
      void reply
        .code(status)
        .header("content-type", response.headers["content-type"] ?? "application/json")
        .header("x-splitscale-worker", worker.id)
        .send(text);
      return { outcome: status === 200 ? "ok" : "upstream_4xx", code: status };
    }
    return await this.pipeStream(ctx, worker, response.body, reply, onFirstByte, failure);
  }

  private async pipeStream(
    ctx: RequestContext,
    worker: Worker,
    body: AsyncIterable<Buffer> & { destroy(): unknown },
    reply: FastifyReply,
    onFirstByte: () => void,
    failure: (error: unknown) => Error,
  ): Promise<{ outcome: Outcome; code: number }> {
    const raw = reply.raw;
    let started = false;
    let sawDone = false;
    let sawError = false;
    let tokens = 0;
    let partial = "";
    const scan = (text: string): void => {
      partial += text;
      let newline = partial.indexOf("\n");
      while (newline >= 0) {
        const line = partial.slice(0, newline).trim();
        partial = partial.slice(newline + 1);
        if (line.startsWith("data:")) {
          const data = line.slice(5).trim();
          if (data === "[DONE]") sawDone = true;
          else if (data.startsWith('{"error"')) sawError = true;
          else if (!data.includes('"choices":[]')) tokens++;
        }
        newline = partial.indexOf("\n");
      }
    };
    try {
      for await (const chunk of body) {
        if (!started) {
          started = true;
          onFirstByte();
          reply.hijack();
          raw.writeHead(200, { ...SSE_HEADERS, "x-request-id": ctx.id, "x-splitscale-worker": worker.id });
        }
        scan(chunk.toString("utf8"));
        if (!raw.write(chunk)) await waitDrain(raw, ctx.abort.signal);
      }
    } catch (error) {
      const reason = failure(error);
      if (!started) throw reason;
      this.stats.outputTokens += tokens;
      if (reason instanceof GatewayError && reason.outcome === "client_closed")
        return { outcome: "client_closed", code: 499 };
      if (reason instanceof RetryableError) this.quarantine(worker);
      const [code, type, message] =
        reason instanceof GatewayError
          ? [reason.status, reason.code, reason.message]
          : [
              502,
              "worker_failure",
              `worker ${worker.id} failed mid-stream (${reason.message}); the response is incomplete`,
            ];
      this.endStreamWithError(raw, message, type, code);
      return { outcome: "failed", code };
    }
    if (!started) throw new RetryableError("the worker closed the stream without sending anything", true);
    this.stats.outputTokens += tokens;
    if (!sawDone || sawError) {
      if (!sawError)
        this.endStreamWithError(
          raw,
          `worker ${worker.id} ended the stream early; the response is incomplete`,
          "worker_failure",
          502,
        );
      else raw.end();
      return { outcome: "failed", code: 502 };
    }
    raw.end();
    return { outcome: "ok", code: 200 };
  }

  private endStreamWithError(raw: FastifyReply["raw"], message: string, type: string, code: number): void {
    if (raw.writableEnded || raw.destroyed) return;
    raw.end(`data: ${JSON.stringify(errorBody(message, type, code))}\n\n`);
  }

  /** Output tokens from an OpenAI usage block (a regex: parsing every answer would cost more than it tells). */
  private countUsage(text: string): void {
    const match = /"completion_tokens"\s*:\s*(\d+)/.exec(text);
    if (match !== null) this.stats.outputTokens += Number(match[1]);
  }
}

function waitDrain(raw: FastifyReply["raw"], signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      raw.off("drain", done);
      raw.off("close", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    raw.on("drain", done);
    raw.on("close", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: string }).code;
    return code === undefined ? error.message : `${code}: ${error.message}`;
  }
  return String(error);
}
