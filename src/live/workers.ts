/**
 * The fleet as the gateway and the controller see it: every worker with its lifecycle phase, its
 * address, and what the gateway has in flight on it. Actuators add workers and move their phases;
 * the gateway counts requests; the controller reads it to build observations.
 *
 * Phases: `starting` (spawned or restarting, not ready), `ready` (routable; its detail status is
 * FREE with nothing in flight, BUSY otherwise), `draining` (no new work, finishing what it has),
 * `stopping` (terminated, waiting for exit), `deleted` (gone; kept a while for `workers list`).
 */
export type WorkerPhase = "starting" | "ready" | "draining" | "stopping" | "deleted";

export interface Worker {
  readonly id: string;
  readonly pool: string;
  /** Base URL, e.g. http://127.0.0.1:40123 (undefined while a pod has no IP yet). */
  url: string | undefined;
  phase: WorkerPhase;
  readonly createdAtMs: number;
  phaseSinceMs: number;
  readyAtMs: number | undefined;
  deletedAtMs: number | undefined;
  restarts: number;
  /** Requests the gateway has placed on it and not finished. */
  inFlight: number;
  /** Prompt tokens of in-flight requests that have not produced their first byte yet. */
  prefillTokensInFlight: number;
  /** Last time a request finished here (its creation time if never). */
  lastServedAtMs: number;
  served: number;
  failed: number;
  /** OS process id (process actuator). */
  pid: number | undefined;
  /** A short human note: why it restarts, why it drains, its last error. */
  note: string;
  /** Not routable until then (ms): it just failed a request (a crash not yet noticed, a 5xx). */
  suspendedUntilMs: number;
}

const HISTORY = 50;

export class WorkerRegistry {
  private readonly workers = new Map<string, Worker>();
  private readonly deleted: Worker[] = [];
  /** Called when capacity may have appeared (a worker became ready or finished a request). */
  onCapacity: () => void = () => {};

  constructor(private readonly nowMs: () => number = Date.now) {}

  add(init: {
    id: string;
    pool: string;
    url?: string | undefined;
    phase?: WorkerPhase;
    pid?: number;
    note?: string;
    createdAtMs?: number;
  }): Worker {
    const now = this.nowMs();
    const worker: Worker = {
      id: init.id,
      pool: init.pool,
      url: init.url,
      phase: init.phase ?? "starting",
      createdAtMs: init.createdAtMs ?? now,
      phaseSinceMs: now,
      readyAtMs: init.phase === "ready" ? now : undefined,
      deletedAtMs: undefined,
      restarts: 0,
      inFlight: 0,
      prefillTokensInFlight: 0,
      lastServedAtMs: init.createdAtMs ?? now,
      served: 0,
      failed: 0,
      pid: init.pid,
      note: init.note ?? "",
      suspendedUntilMs: 0,
    };
    this.workers.set(worker.id, worker);
    if (worker.phase === "ready") this.onCapacity();
    return worker;
  }

  get(id: string): Worker | undefined {
    return this.workers.get(id);
  }

  setPhase(id: string, phase: WorkerPhase, note?: string): void {
    const worker = this.workers.get(id);
    if (worker === undefined) return;
    if (note !== undefined) worker.note = note;
    if (worker.phase === phase) return;
    const now = this.nowMs();
    worker.phase = phase;
    worker.phaseSinceMs = now;
    if (phase === "ready") {
      worker.readyAtMs = now;
      worker.suspendedUntilMs = 0;
      this.onCapacity();
    }
  }

  /**
   * Keeps a worker that just failed a request out of routing for `ms` (a crashed process is often
   * noticed by the gateway before its exit is; a retry must not land on it again).
   */
  suspend(worker: Worker, ms: number): void {
    const until = this.nowMs() + ms;
    if (until <= worker.suspendedUntilMs) return;
    worker.suspendedUntilMs = until;
    const timer = setTimeout(() => this.onCapacity(), ms + 1);
    timer.unref();
  }

  /** Lifts a suspension (the worker answered a health probe). */
  unsuspend(worker: Worker): void {
    if (worker.suspendedUntilMs === 0) return;
    worker.suspendedUntilMs = 0;
    this.onCapacity();
  }

  /** Removes a worker (kept in the deleted history). */
  remove(id: string, note?: string): void {
    const worker = this.workers.get(id);
    if (worker === undefined) return;
    this.workers.delete(id);
    const now = this.nowMs();
    worker.phase = "deleted";
    worker.phaseSinceMs = now;
    worker.deletedAtMs = now;
    if (note !== undefined) worker.note = note;
    this.deleted.push(worker);
    if (this.deleted.length > HISTORY) this.deleted.shift();
  }

  /** Workers not deleted, optionally of one pool. */
  live(pool?: string): Worker[] {
    const out: Worker[] = [];
    for (const worker of this.workers.values())
      if (pool === undefined || worker.pool === pool) out.push(worker);
    return out;
  }

  /** Workers that may receive new requests. */
  routable(): Worker[] {
    const out: Worker[] = [];
    const now = this.nowMs();
    for (const worker of this.workers.values())
      if (worker.phase === "ready" && worker.url !== undefined && worker.suspendedUntilMs <= now)
        out.push(worker);
    return out;
  }

  /** Live workers then the recently deleted, for `workers list`. */
  all(includeDeleted = true): Worker[] {
    return includeDeleted ? [...this.workers.values(), ...this.deleted] : [...this.workers.values()];
  }

  requestStarted(worker: Worker, promptTokens: number): void {
    worker.inFlight++;
    worker.prefillTokensInFlight += promptTokens;
  }

  /** The first byte came back: the prompt is no longer in prefill. */
  firstByte(worker: Worker, promptTokens: number): void {
    worker.prefillTokensInFlight = Math.max(0, worker.prefillTokensInFlight - promptTokens);
  }

  requestFinished(worker: Worker, ok: boolean, promptTokensLeft: number): void {
    worker.inFlight = Math.max(0, worker.inFlight - 1);
    worker.prefillTokensInFlight = Math.max(0, worker.prefillTokensInFlight - promptTokensLeft);
    if (ok) {
      worker.served++;
      worker.lastServedAtMs = this.nowMs();
    } else {
      worker.failed++;
    }
    this.onCapacity();
  }
}

/** EverAI's worker table words: STATUS and DETAIL_STATUS. */
export function workerStatusWords(worker: Worker): { status: string; detail: string } {
  switch (worker.phase) {
    case "starting":
      return { status: worker.restarts > 0 ? "RESTARTING" : "PENDING", detail: "STARTING" };
    case "ready":
      return { status: "RUNNING", detail: worker.inFlight > 0 ? "BUSY" : "FREE" };
    case "draining":
      return { status: "RUNNING", detail: "DRAINING" };
    case "stopping":
      return { status: "STOPPING", detail: "TERMINATING" };
    case "deleted":
      return { status: "DELETED", detail: "-" };
  }
}
