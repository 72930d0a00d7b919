/**
 * One client request through the gateway, from admission to its one counted outcome: it waits for
 * a worker (the gateway places it at once or queues it), forwards the body as received, relays the
 * answer (JSON whole, SSE chunk by chunk), retries once elsewhere when the worker fails before any
 * byte reached the client, and answers every refusal, deadline and failure.
 *
 * Written by hand because it runs ~1,000 times a second per core: the exchange is itself the undici
 * dispatch handler of each attempt (no response stream, no promise per step) and an entry of the
 * gateway's deadline lists (no timer of its own), and a client going away or a deadline cancels it
 * directly (no AbortController).
 */
import type { ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import type { Logger } from "../log.ts";
import { errorBody } from "../openai.ts";
import type { Worker } from "../workers.ts";
import {
  GatewayError,
  RetryableError,
  type GatewayObserver,
  type GatewayStats,
  type Outcome,
} from "./outcomes.ts";
import { Expiring, type Deadlines } from "./deadlines.ts";
import type { QueueEntry } from "./queue.ts";
import { completionTokensIn, SseScan } from "./scan.ts";

/** What an exchange needs from its gateway. */
export interface ExchangeHost {
  readonly stats: GatewayStats;
  readonly observer: GatewayObserver;
  readonly log: Logger;
  /** Retries after a worker failure (beyond the first attempt). */
  readonly retries: number;
  readonly agent: Dispatcher;
  readonly deadlines: Deadlines;
  nowMs(): number;
  /** Finds a worker (calls `exchange.assign`), queues the exchange, or refuses it (`exchange.refuse`). */
  admit(exchange: Exchange, retry: boolean): void;
  /** Takes a queued exchange out of the queue; its entry, or undefined when it was not queued. */
  unqueue(exchange: Exchange): QueueEntry | undefined;
  firstByte(worker: Worker, promptTokens: number): void;
  released(worker: Worker, ok: boolean, promptTokensLeft: number): void;
  /** The worker failed at the connection level (unreachable, hung up). */
  quarantine(worker: Worker): void;
  /** The worker answered 5xx. */
  suspend(worker: Worker): void;
}

const NO_WORKERS: ReadonlySet<string> = new Set();
const EMPTY = Buffer.alloc(0);

export class Exchange extends Expiring implements Dispatcher.DispatchHandler {
  /** Set by the gateway while the exchange waits in its queue. */
  queued: QueueEntry | undefined = undefined;
  private tried: Set<string> | undefined = undefined;
  private attempt = 0;
  private worker: Worker | undefined = undefined;
  private clientGone = false;
  private deadlinePassed = false;
  private done = false;
  // The current attempt.
  private upstream: Dispatcher.DispatchController | undefined = undefined;
  private cancelled = false;
  private firstByteSeen = false;
  private status = 0;
  private contentType: string | undefined = undefined;
  private chunk: Buffer | undefined = undefined;
  private chunks: Buffer[] | undefined = undefined;
  /** Set once the first SSE chunk went to the client (headers sent: no retry from then on). */
  private sse: SseScan | undefined = undefined;

  constructor(
    private readonly host: ExchangeHost,
    readonly id: string,
    readonly route: string,
    readonly stream: boolean,
    readonly promptTokens: number,
    readonly arrivedAtMs: number,
    readonly deadlineMs: number,
    /** The request body as received: forwarded byte for byte. */
    private readonly body: Buffer,
    private readonly response: ServerResponse,
  ) {
    super();
  }

  /** Workers this request already failed on (a preference for the router). */
  get exclude(): ReadonlySet<string> {
    return this.tried ?? NO_WORKERS;
  }

  start(): void {
    this.response.on("close", () => this.clientClosed());
    this.host.deadlines.add(this, this.deadlineMs - this.arrivedAtMs);
    this.host.admit(this, false);
  }

  /** The gateway placed the request on `worker` (already counted there): forward it. */
  assign(worker: Worker): void {
    this.worker = worker;
    this.upstream = undefined;
    this.cancelled = false;
    this.firstByteSeen = false;
    this.status = 0;
    this.contentType = undefined;
    this.chunk = undefined;
    this.chunks = undefined;
    try {
      this.host.agent.dispatch(
        {
          origin: worker.url ?? "",
          path: this.route,
          method: "POST",
          headers: ["content-type", "application/json", "x-request-id", this.id],
          body: this.body,
        },
        this,
      );
    } catch (error) {
      this.crash(error);
    }
  }

  /** Answers a refusal or failure (unless the client is gone or already has headers) and finishes. */
  refuse(error: GatewayError): void {
    if (this.done) return;
    const response = this.response;
    if (!response.headersSent && !this.clientGone && !response.destroyed) {
      const text = JSON.stringify(errorBody(error.message, error.type, error.code));
      const headers = [
        "content-type",
        "application/json; charset=utf-8",
        "content-length",
        String(Buffer.byteLength(text)),
        "x-request-id",
        this.id,
      ];
      if (error.retryAfter_s !== undefined) headers.push("retry-after", String(error.retryAfter_s));
      response.writeHead(error.status, headers);
      response.end(text);
    }
    this.finish(error.outcome, error.status);
  }

  // ---- cancellation ------------------------------------------------------------------------------

  private clientClosed(): void {
    if (this.done || this.response.writableFinished) return;
    this.clientGone = true;
    this.cancel();
  }

  /** The deadline passed. */
  expire(): void {
    if (this.done) return;
    this.deadlinePassed = true;
    this.cancel();
  }

  private cancel(): void {
    const entry = this.host.unqueue(this);
    if (entry !== undefined) {
      const waited = ((this.host.nowMs() - entry.enqueuedAtMs) / 1000).toFixed(1);
      this.refuse(
        this.deadlinePassed
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
      return;
    }
    if (this.worker === undefined) return;
    if (this.upstream !== undefined) {
      // Ends the attempt through onResponseError.
      this.upstream.abort(new Error(this.deadlinePassed ? "deadline" : "client closed the connection"));
      return;
    }
    // Still waiting for a connection to the worker: answer now; onRequestStart aborts it later.
    this.cancelled = true;
    this.failed(new Error("cancelled before the request was sent"));
  }

  // ---- the undici dispatch handler of the current attempt -------------------------------------------

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.upstream = controller;
    if (this.cancelled || this.done) controller.abort(new Error("cancelled"));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.status = statusCode;
    const type = headers["content-type"];
    this.contentType = typeof type === "string" ? type : undefined;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.done) return;
    if (this.stream && this.status === 200) {
      this.relay(controller, chunk);
      return;
    }
    if (this.chunk === undefined) this.chunk = chunk;
    else (this.chunks ??= [this.chunk]).push(chunk);
  }

  onResponseEnd(): void {
    if (this.done) return;
    try {
      if (this.stream && this.status === 200) this.streamEnded();
      else this.answerWhole();
    } catch (error) {
      this.crash(error);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.done) return;
    try {
      this.failed(error);
    } catch (crash) {
      this.crash(crash);
    }
  }

  // ---- answers -----------------------------------------------------------------------------------

  /** Relays one SSE chunk; the first one sends the headers (the worker is committed from then on). */
  private relay(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const response = this.response;
    if (this.sse === undefined) {
      this.sse = new SseScan();
      this.firstByte();
      if (!this.clientGone)
        response.writeHead(200, [
          "content-type",
          "text/event-stream",
          "cache-control",
          "no-cache",
          "connection",
          "keep-alive",
          "x-request-id",
          this.id,
          "x-splitscale-worker",
          this.worker!.id,
        ]);
    }
    this.sse.scan(chunk);
    if (this.clientGone) return;
    if (!response.write(chunk)) {
      // A slow client: stop reading from the worker until the client caught up.
      controller.pause();
      response.once("drain", () => controller.resume());
    }
  }

  private streamEnded(): void {
    const sse = this.sse;
    if (sse === undefined) {
      this.attemptFailed(new RetryableError("the worker closed the stream without sending anything", true));
      return;
    }
    this.host.stats.outputTokens += sse.tokens;
    if (!sse.sawDone || sse.sawError) {
      if (!sse.sawError)
        this.endStreamWithError(
          `worker ${this.worker!.id} ended the stream early; the response is incomplete`,
          "worker_failure",
          502,
        );
      else this.response.end();
      this.finish("failed", 502);
      return;
    }
    this.response.end();
    this.finish("ok", 200);
  }

  /** A JSON answer, or any answer but 200 to a streaming request: relayed whole. */
  private answerWhole(): void {
    const worker = this.worker!;
    const status = this.status;
    const body = this.chunks !== undefined ? Buffer.concat(this.chunks) : (this.chunk ?? EMPTY);
    this.firstByte();
    if (status >= 500) {
      this.attemptFailed(new RetryableError(`HTTP ${status}: ${body.toString("utf8").slice(0, 200)}`, false));
      return;
    }
    if (status === 200) this.host.stats.outputTokens += completionTokensIn(body);
    if (!this.clientGone) {
      this.response.writeHead(status, [
        "content-type",
        this.contentType ?? "application/json",
        "content-length",
        String(body.length),
        "x-request-id",
        this.id,
        "x-splitscale-worker",
        worker.id,
      ]);
      this.response.end(body);
    }
    this.finish(status === 200 ? "ok" : "upstream_4xx", status);
  }

  /** The attempt failed (connection error, abort): retry, refuse, or end the stream already begun. */
  private failed(error: Error): void {
    const worker = this.worker!;
    let reason: GatewayError | RetryableError;
    if (this.deadlinePassed)
      reason = new GatewayError(
        504,
        "timeout_error",
        "deadline_exceeded",
        `request deadline passed while worker ${worker.id} was answering`,
      );
    else if (this.clientGone)
      reason = new GatewayError(
        499,
        "client_closed",
        "client_closed",
        "client went away",
        undefined,
        "client_closed",
      );
    else reason = new RetryableError(describe(error), true);

    const sse = this.sse;
    if (sse === undefined) {
      if (reason instanceof RetryableError) this.attemptFailed(reason);
      else this.refuse(reason);
      return;
    }
    // Mid-stream: the client already has part of the answer; end it with an error event.
    this.host.stats.outputTokens += sse.tokens;
    if (reason instanceof GatewayError) {
      if (reason.outcome === "client_closed") {
        this.finish("client_closed", 499);
        return;
      }
      this.endStreamWithError(reason.message, reason.code, reason.status);
      this.finish("failed", reason.status);
      return;
    }
    this.host.quarantine(worker);
    this.endStreamWithError(
      `worker ${worker.id} failed mid-stream (${reason.message}); the response is incomplete`,
      "worker_failure",
      502,
    );
    this.finish("failed", 502);
  }

  /** The worker failed before any byte reached the client: once more elsewhere, or 502. */
  private attemptFailed(error: RetryableError): void {
    const host = this.host;
    const worker = this.worker!;
    (this.tried ??= new Set()).add(worker.id);
    if (error.connection) host.quarantine(worker);
    else host.suspend(worker);
    host.log.warn(`request ${this.id}: worker ${worker.id} failed (${error.message})`);
    this.release(false);
    if (this.attempt >= host.retries || this.clientGone || host.nowMs() >= this.deadlineMs) {
      this.refuse(
        new GatewayError(
          502,
          "worker_failure",
          "worker_failed",
          `worker ${worker.id} failed: ${error.message}`,
        ),
      );
      return;
    }
    this.attempt++;
    host.stats.retries++;
    host.observer.retried?.();
    host.log.info(`request ${this.id}: retrying on another worker (attempt ${this.attempt + 1})`);
    host.admit(this, true);
  }

  private endStreamWithError(message: string, type: string, code: number): void {
    const response = this.response;
    if (response.writableEnded || response.destroyed) return;
    response.end(`data: ${JSON.stringify(errorBody(message, type, code))}\n\n`);
  }

  /** A bug: logged, answered 500 (or the stream cut), counted as failed. */
  private crash(error: unknown): void {
    this.host.log.error(
      `request ${this.id}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    if (this.done) return;
    const upstream = this.upstream;
    if (this.response.headersSent) {
      this.response.destroy();
      this.finish("failed", 500);
    } else this.refuse(new GatewayError(500, "server_error", "internal_error", "internal gateway error"));
    // Once finished: the abort's error callback finds the exchange done (no retry of a bug).
    upstream?.abort(error instanceof Error ? error : new Error(String(error)));
  }

  // ---- bookkeeping -------------------------------------------------------------------------------

  private firstByte(): void {
    if (this.firstByteSeen) return;
    this.firstByteSeen = true;
    this.host.firstByte(this.worker!, this.promptTokens);
  }

  private release(ok: boolean): void {
    const worker = this.worker;
    if (worker === undefined) return;
    this.worker = undefined;
    this.host.released(worker, ok, this.firstByteSeen ? 0 : this.promptTokens);
  }

  /** The one place an accepted request ends. */
  private finish(outcome: Outcome, code: number): void {
    if (this.done) return;
    this.done = true;
    this.host.deadlines.remove(this);
    this.release(outcome === "ok");
    const final = this.clientGone && outcome !== "ok" ? "client_closed" : outcome;
    const now = this.host.nowMs();
    this.host.stats.finish(final, code, now);
    this.host.observer.requestDone?.(this.route, code, (now - this.arrivedAtMs) / 1000);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: string }).code;
    return code === undefined ? error.message : `${code}: ${error.message}`;
  }
  return String(error);
}
