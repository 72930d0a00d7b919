/**
 * The gateway's bounded FIFO of requests waiting for a worker, with EverAI's queue reasons:
 * `WorkerBusy` (ready workers exist but all are at their concurrency limit: EverAI's QueueDueBusy)
 * and `NoWorker` (no worker is ready: scale from zero, everything restarting).
 */
import type { Worker } from "../workers.ts";

export type QueueReason = "WorkerBusy" | "NoWorker";

export interface QueueEntry {
  readonly requestId: string;
  readonly enqueuedAtMs: number;
  reason: QueueReason;
  /** When the entry gives up waiting (queue timeout or request deadline, whichever is first). */
  readonly expiresAtMs: number;
  readonly promptTokens: number;
  /** Workers this request already failed on (a preference: used only if no other is free). */
  readonly exclude: ReadonlySet<string>;
  /** A retry of a request that already waited once: it skips the line and the size limit. */
  readonly retry: boolean;
  resolve(worker: Worker): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export class RequestQueue {
  private readonly entries: QueueEntry[] = [];

  constructor(readonly maxSize: number) {}

  get length(): number {
    return this.entries.length;
  }

  get full(): boolean {
    return this.entries.length >= this.maxSize;
  }

  head(): QueueEntry | undefined {
    return this.entries[0];
  }

  /** Adds at the tail, or at the head for retries (they already waited their turn). */
  push(entry: QueueEntry): void {
    if (entry.retry) {
      let index = 0;
      while (index < this.entries.length && this.entries[index]!.retry) index++;
      this.entries.splice(index, 0, entry);
    } else {
      this.entries.push(entry);
    }
  }

  shift(): QueueEntry | undefined {
    return this.entries.shift();
  }

  remove(entry: QueueEntry): boolean {
    const index = this.entries.indexOf(entry);
    if (index < 0) return false;
    this.entries.splice(index, 1);
    return true;
  }

  list(): readonly QueueEntry[] {
    return this.entries;
  }

  setReason(reason: QueueReason): void {
    for (const entry of this.entries) entry.reason = reason;
  }

  count(reason: QueueReason): number {
    let n = 0;
    for (const entry of this.entries) if (entry.reason === reason) n++;
    return n;
  }

  oldestAgeMs(nowMs: number): number {
    const head = this.entries[0];
    if (head === undefined) return 0;
    let oldest = head.enqueuedAtMs;
    for (const entry of this.entries) if (entry.enqueuedAtMs < oldest) oldest = entry.enqueuedAtMs;
    return nowMs - oldest;
  }
}
