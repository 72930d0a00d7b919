/**
 * How a request through the gateway ends: its counted outcome, the refusals and failures that become
 * HTTP answers, and the counters the controller and the admin API read.
 *
 * Every request the gateway accepts ends in exactly one outcome:
 * ok | rejected (429/503) | failed (502/504/stream error) | upstream_4xx | client_closed.
 */

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
export class RetryableError extends Error {
  constructor(
    message: string,
    readonly connection: boolean,
  ) {
    super(message);
  }
}

/** Hooks the gateway offers to metrics exporters. */
export interface GatewayObserver {
  requestDone?(route: string, code: number, seconds: number): void;
  queueWait?(seconds: number): void;
  retried?(): void;
}
